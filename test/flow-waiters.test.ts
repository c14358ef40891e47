// Flow control: a publisher paused by a queue that stays above its low-water mark is
// listed once, however often it is paused again, and resumed once when the queue drains.
import { describe, it, expect } from 'vitest';
import { Vhost } from '../src/broker/vhost';
import { Message } from '../src/broker/message';
import { Consumer, type ConsumerChannel } from '../src/broker/consumer';
import type { FlowWaiter } from '../src/broker/queue';

const NO_PROPS = Buffer.from([0, 0]);

/** A slow consumer's channel: it takes a message when given credit (or everything once open), so the queue backs up. */
class StalledChannel implements ConsumerChannel {
  open = false;
  credit = 0;
  canDeliver(): boolean {
    return this.open || this.credit > 0;
  }
  deliver(): void {
    if (this.credit > 0) this.credit--;
  }
  consumerCancelled(): void {}
}

/** A publishing connection as the channel drives it: pause when the queue is overloaded. */
class Publisher implements FlowWaiter {
  resumed = 0;
  flowResume(): void {
    this.resumed++;
  }
}

describe('flow-control waiters', () => {
  it('stay one per connection under a sustained flood, and each is resumed once when the queue drains', () => {
    const owner = {};
    const v = new Vhost('/');
    const q = v.declareQueue('flood', false, false, false, false, {}, owner);
    const channel = new StalledChannel();
    q.addConsumer(new Consumer('c1', channel, q, true, false, 0, {}));
    const publishers = [new Publisher(), new Publisher()];

    // 40 000 publishes, each publisher pausing whenever the queue says it is overloaded
    // (as Channel.basicPublish does after every enqueue).
    let pauses = 0;
    for (let i = 0; i < 40_000; i++) {
      const p = publishers[i % 2];
      // The consumer keeps taking a message now and then: the queue is behind a consumer
      // that takes (one that takes nothing would not hold publishers back).
      if (i % 100 === 0) {
        channel.credit = 1;
        q.dispatch();
      }
      q.enqueue(new Message('', 'flood', NO_PROPS, Buffer.from('x')));
      if (q.overloaded) {
        q.waitForFlow(p);
        pauses++;
      }
      expect(q.flowWaiterCount).toBeLessThanOrEqual(publishers.length);
    }
    expect(pauses).toBeGreaterThan(10_000);
    expect(q.flowWaiterCount).toBe(2);

    channel.open = true;
    q.dispatch();
    expect(q.messageCount).toBe(0);
    expect(q.flowWaiterCount).toBe(0);
    expect(publishers.map((p) => p.resumed)).toEqual([1, 1]);
  });
});
