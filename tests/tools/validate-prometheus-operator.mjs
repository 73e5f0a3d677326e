// Validates Prometheus Operator resources (monitoring.coreos.com) against the
// schemas that @kubernetes-models/prometheus-operator generates from the
// operator's CRDs. kubernetes-validate has no schemas for custom resources.
//
// Usage: node validate-prometheus-operator.mjs NODE_MODULES_DIR < resources.json
// where resources.json is a JSON array of resources. Prints one line per resource,
// OK or ERROR with the schema's complaints; exits 1 if any is invalid.
//
// The CRD schemas do not forbid unknown fields (the API server prunes them), so
// neither does this check.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules] = process.argv.slice(2);
if (!modules) {
  console.error('usage: node validate-prometheus-operator.mjs NODE_MODULES_DIR < resources.json');
  process.exit(2);
}
const resources = JSON.parse(readFileSync(0, 'utf8'));
let failed = 0;
for (const resource of resources) {
  const name = `${resource.kind}/${resource.metadata?.name}`;
  const [group, version] = String(resource.apiVersion).split('/');
  if (group !== 'monitoring.coreos.com' || !version || !/^[A-Za-z]+$/.test(resource.kind ?? '')) {
    console.log(`ERROR ${name}: not a monitoring.coreos.com resource (${resource.apiVersion})`);
    failed += 1;
    continue;
  }
  const file = join(modules, '@kubernetes-models', 'prometheus-operator', group, version, `${resource.kind}.js`);
  let model;
  try {
    model = (await import(pathToFileURL(file).href))[resource.kind];
  } catch (error) {
    console.log(`ERROR ${name}: no schema for ${resource.apiVersion} ${resource.kind}: ${error.message}`);
    failed += 1;
    continue;
  }
  try {
    new model(resource).validate();
    console.log(`OK ${name}`);
  } catch (error) {
    console.log(`ERROR ${name}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
