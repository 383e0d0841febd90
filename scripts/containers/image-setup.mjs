// Run once while an image is built, in exec form because the base may have no shell or useradd:
// adds the unprivileged user the servers run as, and the data directory it alone owns.
import { appendFileSync, chownSync, mkdirSync, readFileSync } from 'node:fs';

const ID = 10001;
const DATA = '/data';

function add(file, name, line) {
  const text = readFileSync(file, 'utf8');
  if (text.split('\n').some((l) => l.startsWith(`${name}:`))) return;
  appendFileSync(file, `${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`);
}

add('/etc/group', 'tidemark', `tidemark:x:${ID}:`);
add('/etc/passwd', 'tidemark', `tidemark:x:${ID}:${ID}:Tidemark:${DATA}:/usr/sbin/nologin`);
mkdirSync(DATA, { recursive: true, mode: 0o700 });
chownSync(DATA, ID, ID);
