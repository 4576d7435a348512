// Prints the texts of a worker's R2 archive objects under a prefix, as a
// JSON array, read from its local state folder by the e2e harness's reader:
//   node tests/warehouse/archive.mjs STATE_DIR PREFIX
import { archiveObjects } from "../e2e/harness.mjs";

const [stateDir, prefix] = process.argv.slice(2);
const objects = await archiveObjects(stateDir, prefix);
process.stdout.write(JSON.stringify(objects.map((o) => o.text)));
// Nothing else is running; don't wait for idle handles to close.
process.exit(0);
