import { DestinationSet } from './destination-set';
import type { BindingDestination } from './exchange';

/**
 * One word position in the trie. `*` and `#` get dedicated slots so that matching never
 * has to look them up by string.
 */
interface TopicNode {
  literal: Map<string, TopicNode> | undefined;
  star: TopicNode | undefined;
  hash: TopicNode | undefined;
  /** Destinations of binding keys that end at this node. */
  destinations: DestinationSet | undefined;
  /** Route pass in which this `#` node was last expanded, and from which position. */
  stamp: number;
  minPos: number;
}

function newNode(): TopicNode {
  // Every field set up front so all nodes share one hidden class.
  return { literal: undefined, star: undefined, hash: undefined, destinations: undefined, stamp: 0, minPos: 0 };
}

function isEmpty(node: TopicNode): boolean {
  return (
    node.destinations === undefined &&
    node.star === undefined &&
    node.hash === undefined &&
    (node.literal === undefined || node.literal.size === 0)
  );
}

/**
 * Splits a key into words the way RabbitMQ does: on every '.', keeping empty words, except
 * that the empty key has no words at all (so binding key "" matches only routing key "",
 * `*` does not match "", and `#` does). Used for binding keys only; routing keys are
 * walked in place.
 */
export function topicWords(key: string): string[] {
  return key.length === 0 ? [] : key.split('.');
}

/**
 * Binding keys of a topic exchange as a trie of words, matched against routing keys
 * with RabbitMQ's semantics: words are separated by '.', `*` matches exactly one word,
 * `#` matches zero or more.
 *
 * Matching walks the routing key in place: a position is the index of the first
 * character of the next word, and `key.length + 1` means "no words left" (distinct from
 * `key.length`, which is the empty last word of a key ending in '.').
 *
 * A `#` node may swallow any number of words, so the naive search is exponential for
 * keys like `#.#.#.#.a`. Each `#` node therefore records, per route pass, the lowest
 * position it has been expanded from; since an expansion from position p covers every
 * later position, re-entries at or after it are skipped. Every node is then visited at
 * most once per word position: a non-`#` node is reached only through the chain of exact
 * words below its nearest `#` ancestor (or the root).
 */
export class TopicTrie {
  private readonly root = newNode();
  /** Route pass counter for the `#` bookkeeping; never reset, so stale stamps never match. */
  private pass = 0;
  // Per-pass state, kept on the instance so the recursion passes fewer arguments.
  private key = '';
  private end = 0;
  private out: Set<BindingDestination> | undefined;

  add(bindingKey: string, dest: BindingDestination): void {
    let node = this.root;
    for (const word of topicWords(bindingKey)) node = child(node, word);
    (node.destinations ??= new DestinationSet()).add(dest);
  }

  /** Drops one reference to `dest` under `bindingKey`, pruning nodes left empty. */
  remove(bindingKey: string, dest: BindingDestination): void {
    const words = topicWords(bindingKey);
    const path: TopicNode[] = [this.root];
    for (const word of words) {
      const next = existingChild(path[path.length - 1], word);
      if (!next) return;
      path.push(next);
    }
    const leaf = path[path.length - 1];
    if (!leaf.destinations?.release(dest)) return;
    if (leaf.destinations.size === 0) leaf.destinations = undefined;
    for (let i = words.length; i > 0 && isEmpty(path[i]); i--) detach(path[i - 1], words[i - 1]);
  }

  match(routingKey: string, out: Set<BindingDestination>): void {
    this.pass++;
    this.key = routingKey;
    this.end = routingKey.length + 1;
    this.out = out;
    this.visit(this.root, routingKey.length === 0 ? this.end : 0);
    this.out = undefined;
  }

  /** Explores `node` with the routing key's words from `pos` onwards still to match. */
  private visit(node: TopicNode, pos: number): void {
    if (node.hash !== undefined) this.expandHash(node.hash, pos);
    if (pos === this.end) {
      node.destinations?.addTo(this.out!);
      return;
    }
    const key = this.key;
    let wordEnd = key.indexOf('.', pos);
    let next: number;
    if (wordEnd < 0) {
      wordEnd = key.length;
      next = this.end;
    } else {
      next = wordEnd + 1;
    }
    if (node.star !== undefined) this.visit(node.star, next);
    if (node.literal !== undefined) {
      const child = node.literal.get(key.slice(pos, wordEnd));
      if (child !== undefined) this.visit(child, next);
    }
  }

  /** Lets the `#` node `hash` swallow zero or more words starting at `pos`. */
  private expandHash(hash: TopicNode, pos: number): void {
    let stop = Infinity;
    if (hash.stamp === this.pass) {
      if (hash.minPos <= pos) return;
      stop = hash.minPos; // positions from there on were covered by the earlier expansion
    }
    hash.stamp = this.pass;
    hash.minPos = pos;
    const key = this.key;
    for (let p = pos; p < stop; ) {
      this.visit(hash, p);
      if (p === this.end) return;
      const dot = key.indexOf('.', p);
      p = dot < 0 ? this.end : dot + 1;
    }
  }
}

function child(node: TopicNode, word: string): TopicNode {
  if (word === '#') return (node.hash ??= newNode());
  if (word === '*') return (node.star ??= newNode());
  const literal = (node.literal ??= new Map());
  let next = literal.get(word);
  if (!next) {
    next = newNode();
    literal.set(word, next);
  }
  return next;
}

function existingChild(node: TopicNode, word: string): TopicNode | undefined {
  if (word === '#') return node.hash;
  if (word === '*') return node.star;
  return node.literal?.get(word);
}

function detach(parent: TopicNode, word: string): void {
  if (word === '#') parent.hash = undefined;
  else if (word === '*') parent.star = undefined;
  else parent.literal?.delete(word);
}
