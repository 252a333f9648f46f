// A stand-in for the bot's keepalived hook endpoint, run inside okl-bot by tests. Prints one
// JSON line per POST to stdout ({"path", "body", "at"}) and answers 204; prints "listening"
// first so the parent knows it is ready.
// usage: node hook-listener.mjs HOST PORT
import { createServer } from 'node:http';

const [host = '10.86.0.50', portText = '9099'] = process.argv.slice(2);
const server = createServer((req, res) => {
  let text = '';
  req.on('data', (chunk) => {
    text += chunk;
  });
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    process.stdout.write(`${JSON.stringify({ method: req.method, path: req.url, body, at: Date.now() })}\n`);
    res.writeHead(204);
    res.end();
  });
});
server.listen(Number(portText), host, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
