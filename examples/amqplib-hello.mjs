// Publish with confirms to a durable queue and consume it, with amqplib (npm install amqplib).
import amqp from 'amqplib';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672';
const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();

await channel.assertQueue('tasks', { durable: true });
// persistent + durable queue + confirm: once waitForConfirms resolves, the message is on disk.
channel.sendToQueue('tasks', Buffer.from('Hello from amqplib'), { persistent: true });
await channel.waitForConfirms();

await channel.prefetch(10);
await new Promise((resolve) => {
  channel.consume('tasks', (msg) => {
    console.log(msg.content.toString()); // Hello from amqplib
    channel.ack(msg);
    resolve();
  });
});
await connection.close();
