// Preloaded into a CLI run by spawn-okome.ts: records, inside the process, how long it stayed up
// after its last write to stdout or stderr, until its event loop was empty ('exit'). A timer or
// handle left open shows here directly, without the process teardown or the test process's own
// scheduling that a measurement from outside includes on a loaded machine.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.env.OKOME_TEST_LINGER_FILE;
if (file !== undefined) {
  let last = performance.now();
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = (...args) => {
      last = performance.now();
      return write(...args);
    };
  }
  process.on('exit', () => writeFileSync(file, String(performance.now() - last)));
}
