// Stands in for Etsy's stats.js: runs our statsd (ETSY_SHIM_STATSD) with
// `--config CONFIG`, passes its output through, says "server is up" on
// stdout (what Etsy's tests wait for) once it listens, and hands SIGTERM on.
// ETSY_SHIM_EXTRA: flags added after --config, for trying things by hand.
const { spawn } = require('child_process');

const extra = (process.env.ETSY_SHIM_EXTRA || '').split(' ').filter((a) => a !== '');
const statsd = spawn(process.env.ETSY_SHIM_STATSD, ['--config', process.argv[2], ...extra], {
  stdio: ['ignore', 'inherit', 'pipe'],
});
let up = false;
statsd.stderr.on('data', (data) => {
  process.stderr.write(data);
  if (!up && /listening for metrics/.test(data.toString())) {
    up = true;
    process.stdout.write('server is up\n');
  }
});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => statsd.kill(sig));
}
statsd.on('exit', (code) => process.exit(code === null ? 1 : code));
