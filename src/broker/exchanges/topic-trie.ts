import { DestinationSet } from './destination-set';
import type { BindingDestination } from './exchange';
import type { RouteTargets } from './route-targets';

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
 * `*` does not match "", and `#` does). Used for binding keys; `TopicTrie.match` cuts
 * routing keys the same way without allocating an array.
 */
export function topicWords(key: string): string[] {
  return key.length === 0 ? [] : key.split('.');
}

/**
 * Binding keys of a topic exchange as a trie of words, matched against routing keys
 * with RabbitMQ's semantics: words are separated by '.', `*` matches exactly one word,
 * `#` matches zero or more.
 *
 * Matching first cuts the routing key into words with one indexOf scan into an array kept
 * on the trie (no `split`, no per-message array), then walks the trie by word index.
 * Measured against `split` (up to 2x slower on short keys: the array per message) and
 * against walking the key by character position, slicing a word at each visited node
 * (1.5-6x slower once `#` bindings fan out: the same word is sliced again for every node
 * visited at that position).
 *
 * A `#` node may swallow any number of words, so the naive search is exponential for
 * keys like `#.#.#.#.a`. Each `#` node therefore records, per route pass, the lowest
 * position it has been expanded from; since an expansion from position p covers every
 * later position, re-entries at or after it are skipped. Every node is then visited at
 * most once per word position: any other node is reached only through the one-word-per-step
 * chain below its nearest `#` ancestor (or the root), so its position is fixed by that
 * ancestor's.
 */
export class TopicTrie {
  private readonly root = newNode();
  /** Route pass counter for the `#` bookkeeping; never reset, so stale stamps never match. */
  private pass = 0;
  /** Words of the routing key being matched; reused, so entries past `wordCount` are stale. */
  private readonly words: string[] = [];
  private wordCount = 0;

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

  match(routingKey: string, out: RouteTargets): void {
    this.pass++;
    this.wordCount = this.cutWords(routingKey);
    this.visit(this.root, 0, out);
  }

  /** `topicWords` into the reused array; returns the word count. */
  private cutWords(key: string): number {
    if (key.length === 0) return 0;
    const words = this.words;
    let n = 0;
    let from = 0;
    for (;;) {
      const dot = key.indexOf('.', from);
      if (dot < 0) {
        words[n++] = key.slice(from);
        return n;
      }
      words[n++] = key.slice(from, dot);
      from = dot + 1;
    }
  }

  /** Explores `node` with words `pos`.. of the routing key still to match. */
  private visit(node: TopicNode, pos: number, out: RouteTargets): void {
    if (node.hash !== undefined) this.expandHash(node.hash, pos, out);
    if (pos === this.wordCount) {
      node.destinations?.addTo(out);
      return;
    }
    if (node.star !== undefined) this.visit(node.star, pos + 1, out);
    if (node.literal !== undefined) {
      const next = node.literal.get(this.words[pos]);
      if (next !== undefined) this.visit(next, pos + 1, out);
    }
  }

  /** Lets the `#` node `hash` swallow zero or more words starting at `pos`. */
  private expandHash(hash: TopicNode, pos: number, out: RouteTargets): void {
    let stop = this.wordCount;
    if (hash.stamp === this.pass) {
      if (hash.minPos <= pos) return;
      stop = hash.minPos - 1; // positions from minPos on were covered by the earlier expansion
    }
    hash.stamp = this.pass;
    hash.minPos = pos;
    for (let p = pos; p <= stop; p++) this.visit(hash, p, out);
  }
}

function child(node: TopicNode, word: string): TopicNode {
  if (word === '#') return (node.hash ??= newNode());
  if (word === '*') return (node.star ??= newNode());
  const literal = (node.literal ??= new Map<string, TopicNode>());
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
