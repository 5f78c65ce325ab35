/**
 * The Kubernetes manifests (docker/k8s) rendered with kustomize and checked against the Kubernetes
 * schemas and against the service itself: its configuration schema, its OpenAPI paths, its drain
 * timeout, and the images the Dockerfiles build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../services/config.ts';
import { cpuCores, find, K8S, memoryBytes, probeBudget, render, renderComposed, REPO, schemaErrors, selects, unknownFieldErrors, type K8sObject } from './k8s.ts';
import { parseDockerfile } from './dockerfile.ts';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string> };
const openapiPaths = Object.keys((parse(readFileSync(join(REPO, 'openapi.yaml'), 'utf8')) as { paths: Record<string, unknown> }).paths);

const overlays = {
  cpu: render(join(K8S, 'overlays/cpu')),
  gpu: render(join(K8S, 'overlays/gpu')),
};
/** The optional components on top of the CPU overlay. */
const withComponents = renderComposed({
  resources: [join(K8S, 'overlays/cpu')],
  components: [join(K8S, 'components/servicemonitor'), join(K8S, 'components/model-volume')],
});
const jobs = render(join(K8S, 'jobs'));
const secretExample = parse(readFileSync(join(K8S, 'base/secret.example.yaml'), 'utf8')) as K8sObject;

const SERVER = 'unet-segmentation';

function server(objects: K8sObject[]) {
  const deployment = find(objects, 'Deployment', SERVER);
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: { name: string }) => c.name === 'server');
  assert.ok(container, 'Deployment has a container named server');
  return { deployment, pod, container };
}

/** The env the server container gets: its ConfigMap's data plus literal env values. */
function serverEnv(objects: K8sObject[]): Record<string, string> {
  const { container } = server(objects);
  const env: Record<string, string> = {};
  for (const ref of container.envFrom ?? []) {
    assert.ok(ref.configMapRef, 'envFrom only from ConfigMaps');
    Object.assign(env, find(objects, 'ConfigMap', ref.configMapRef.name).data);
  }
  for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}

function envNames(objects: K8sObject[]): string[] {
  const { container } = server(objects);
  const names = (container.env ?? []).map((e: { name: string }) => e.name);
  for (const ref of container.envFrom ?? []) names.push(...Object.keys(find(objects, 'ConfigMap', ref.configMapRef.name).data));
  return names;
}

function preStopSleepSeconds(container: { lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } } }): number {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return 0;
  if (preStop.sleep) return preStop.sleep.seconds;
  const cmd = preStop.exec?.command ?? [];
  assert.equal(cmd[0], 'sleep', 'preStop is a plain sleep');
  return Number(cmd[1]);
}

describe('kubernetes manifests', () => {
  test('every object validates against the Kubernetes schemas, with no unknown fields', async () => {
    const all = [...overlays.cpu, ...overlays.gpu, ...withComponents, ...jobs, secretExample];
    assert.deepEqual(await schemaErrors(all), []);
    assert.deepEqual(unknownFieldErrors(all), []);
  });

  test('the schema checks reject a misspelt field and a wrong type', async () => {
    const broken = structuredClone(find(overlays.cpu, 'Deployment', SERVER));
    const c = broken.spec.template.spec.containers[0];
    c.livenessProbe.failureTreshold = 3;
    c.ports[0].containerPort = 'http';
    assert.equal(unknownFieldErrors([broken]).length, 2);
    assert.equal((await schemaErrors([broken])).length, 1);
  });

  for (const [name, objects] of Object.entries(overlays)) {
    describe(`overlay ${name}`, () => {
      test('configuration uses only variables services/config.ts knows, with values it accepts', () => {
        const unknown = envNames(objects).filter((n) => !CONFIG_VARIABLES.includes(n));
        assert.deepEqual(unknown, []);
        const env = serverEnv(objects);
        const config = loadConfig({ ...env, API_TOKEN: secretExample.stringData.API_TOKEN });
        assert.equal(config.provider, name === 'gpu' ? 'cuda' : 'cpu');
      });

      test('container port, Service and metrics annotations agree with PORT', () => {
        const { deployment, container } = server(objects);
        const port = loadConfig(serverEnv(objects)).port;
        const http = container.ports.find((p: { name: string }) => p.name === 'http');
        assert.equal(http.containerPort, port);
        const svc = find(objects, 'Service', SERVER);
        assert.ok(svc.spec.ports.every((p: { targetPort: unknown }) => p.targetPort === 'http' || p.targetPort === port));
        const ann = deployment.spec.template.metadata.annotations;
        assert.equal(ann['prometheus.io/scrape'], 'true');
        assert.equal(Number(ann['prometheus.io/port']), port);
        assert.ok(openapiPaths.includes(ann['prometheus.io/path']), `${ann['prometheus.io/path']} is in openapi.yaml`);
      });

      test('probes hit the service\'s startup, live and ready paths (all in openapi.yaml)', () => {
        const { container } = server(objects);
        const paths = {
          startupProbe: container.startupProbe.httpGet.path,
          livenessProbe: container.livenessProbe.httpGet.path,
          readinessProbe: container.readinessProbe.httpGet.path,
        };
        assert.deepEqual(paths, { startupProbe: '/startupz', livenessProbe: '/livez', readinessProbe: '/readyz' });
        for (const p of Object.values(paths)) assert.ok(openapiPaths.includes(p), `${p} is in openapi.yaml`);
        for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) assert.equal(probe.httpGet.port, 'http');
        // Liveness must not kill a pod that is still loading: the startup probe gates it and has the bigger budget.
        assert.ok(probeBudget(container.startupProbe) > probeBudget(container.livenessProbe));
      });

      test('the grace period covers the preStop sleep plus DRAIN_TIMEOUT_SECONDS', () => {
        const { pod, container } = server(objects);
        const drain = loadConfig(serverEnv(objects)).drainTimeoutSeconds;
        const preStop = preStopSleepSeconds(container);
        assert.ok(preStop > 0, 'a preStop sleep covers the endpoints-removal race');
        assert.ok(pod.terminationGracePeriodSeconds > preStop + drain, `${pod.terminationGracePeriodSeconds} > ${preStop} + ${drain}`);
      });

      test('CPU requests cover WORKERS x INTRA_OP_THREADS plus the event loop; limits are not below requests', () => {
        const { container } = server(objects);
        const env = serverEnv(objects);
        // Explicit threads: inside a pod Node sees the node's cores, not the CPU quota.
        assert.ok(Number(env.INTRA_OP_THREADS) > 0, 'INTRA_OP_THREADS is set explicitly');
        const cfg = loadConfig(env);
        const { requests, limits } = container.resources;
        assert.ok(cpuCores(requests.cpu) >= cfg.workers * cfg.intraOpThreads + 1, `cpu ${requests.cpu} >= ${cfg.workers} x ${cfg.intraOpThreads} + 1`);
        if (limits?.cpu !== undefined) assert.ok(cpuCores(limits.cpu) >= cpuCores(requests.cpu));
        assert.ok(memoryBytes(limits.memory) >= memoryBytes(requests.memory));
      });

      test('Service, PodDisruptionBudget, spread constraints and autoscaler target the inference pods only', () => {
        const { deployment } = server(objects);
        const podLabels = deployment.spec.template.metadata.labels;
        assert.ok(selects(deployment.spec.selector.matchLabels, podLabels));
        const others = objects.filter((o) => o.kind === 'Deployment' && o !== deployment).map((o) => o.spec.template.metadata.labels);
        const spread = deployment.spec.template.spec.topologySpreadConstraints.map((c: { labelSelector: { matchLabels: Record<string, string> } }) => c.labelSelector.matchLabels);
        for (const selector of [find(objects, 'Service', SERVER).spec.selector, find(objects, 'PodDisruptionBudget').spec.selector.matchLabels, ...spread]) {
          assert.ok(selects(selector, podLabels));
          for (const labels of others) assert.ok(!selects(selector, labels));
        }
        const hpa = find(objects, 'HorizontalPodAutoscaler');
        assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: SERVER });
        assert.ok(hpa.spec.minReplicas >= 1 && hpa.spec.minReplicas <= hpa.spec.maxReplicas);
        assert.equal(deployment.spec.replicas, undefined, 'the autoscaler owns replicas');
      });

      test('several replicas share results through the bundled Redis', () => {
        const url = new URL(serverEnv(objects).REDIS_URL!);
        const svc = find(objects, 'Service', url.hostname);
        assert.ok(svc.spec.ports.some((p: { port: number }) => p.port === Number(url.port || 6379)));
        const redisPods = find(objects, 'Deployment', url.hostname).spec.template.metadata.labels;
        assert.ok(selects(svc.spec.selector, redisPods));
        const policy = find(objects, 'NetworkPolicy', url.hostname);
        assert.ok(selects(policy.spec.podSelector.matchLabels, redisPods));
        assert.ok(selects(policy.spec.ingress[0].from[0].podSelector.matchLabels, server(objects).deployment.spec.template.metadata.labels));
      });

      test('pods run as the image\'s non-root user with a read-only root and no capabilities', () => {
        const uid = Number(parseDockerfile(join(REPO, name === 'gpu' ? 'docker/Dockerfile.cuda' : 'docker/Dockerfile')).final.user?.split(':')[0]);
        for (const d of objects.filter((o) => o.kind === 'Deployment')) {
          const pod = d.spec.template.spec;
          assert.equal(pod.securityContext.runAsNonRoot, true);
          assert.equal(pod.automountServiceAccountToken, false);
          for (const c of pod.containers) {
            assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${d.metadata.name}/${c.name}`);
            assert.equal(c.securityContext.readOnlyRootFilesystem, true);
            assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
          }
        }
        const { pod, container } = server(objects);
        assert.equal(pod.securityContext.runAsUser, uid, 'runAsUser is the Dockerfile USER');
        // tsx writes its transpile cache under os.tmpdir(); the root filesystem is read-only.
        const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/tmp');
        assert.ok(pod.volumes.find((v: { name: string; emptyDir?: unknown }) => v.name === tmp?.name && v.emptyDir));
      });

      test('the API token comes from the Secret that secret.example.yaml describes', () => {
        const { container } = server(objects);
        const ref = container.env.find((e: { name: string }) => e.name === 'API_TOKEN').valueFrom.secretKeyRef;
        assert.equal(ref.name, secretExample.metadata.name);
        assert.ok(ref.key in secretExample.stringData);
        assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no Secret is rendered from git');
      });
    });
  }

  test('images: the overlays deploy the tags the Dockerfiles document, version from package.json', () => {
    const cpuImage = server(overlays.cpu).container.image;
    const gpuImage = server(overlays.gpu).container.image;
    assert.equal(cpuImage, `unet-segmentation:${pkg.version}`);
    assert.equal(gpuImage, `unet-segmentation:${pkg.version}-cuda`);
    for (const [file, image] of [['docker/Dockerfile', cpuImage], ['docker/Dockerfile.cuda', gpuImage]] as const) {
      const tag = /docker build -f (\S+) -t (\S+) \./.exec(readFileSync(join(REPO, file), 'utf8'));
      assert.ok(tag, `${file} documents its build command`);
      assert.deepEqual([tag[1], tag[2]], [file, image]);
    }
  });

  test('GPU overlay: one GPU per pod, CUDA provider, GPU-node toleration, longer start-up budget', () => {
    const { pod, container } = server(overlays.gpu);
    assert.equal(String(container.resources.limits['nvidia.com/gpu']), '1');
    assert.equal(String(container.resources.requests['nvidia.com/gpu']), '1');
    assert.equal(serverEnv(overlays.gpu).EXECUTION_PROVIDER, 'cuda');
    assert.ok(pod.tolerations.some((t: { key: string; effect: string }) => t.key === 'nvidia.com/gpu' && t.effect === 'NoSchedule'));
    assert.ok(probeBudget(container.startupProbe) > probeBudget(server(overlays.cpu).container.startupProbe));
    const cpu = server(overlays.cpu);
    assert.equal(cpu.container.resources.limits['nvidia.com/gpu'], undefined);
    assert.equal(cpu.pod.tolerations, undefined);
  });

  test('components: ServiceMonitor scrapes /metrics on the http port; model volume is mounted read-only at MODEL_REPOSITORY', () => {
    const sm = find(withComponents, 'ServiceMonitor');
    const { pod, container } = server(withComponents);
    assert.ok(selects(sm.spec.selector.matchLabels, find(withComponents, 'Service', SERVER).metadata.labels));
    assert.deepEqual(sm.spec.endpoints.map((e: { port: string; path: string }) => [e.port, e.path]), [['http', '/metrics']]);
    assert.ok(openapiPaths.includes('/metrics'));
    const repo = loadConfig(serverEnv(withComponents)).modelRepository;
    const mount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === repo);
    assert.ok(mount?.readOnly, `a read-only volume at ${repo}`);
    assert.ok(pod.volumes.find((v: { name: string; persistentVolumeClaim?: unknown }) => v.name === mount.name && v.persistentVolumeClaim));
  });

  test('the batch Job runs the package\'s segment CLI in the CPU image as the non-root user', () => {
    const job = find(jobs, 'Job');
    const pod = job.spec.template.spec;
    const c = pod.containers[0];
    assert.equal(c.image, server(overlays.cpu).container.image);
    assert.equal(c.command, undefined, 'args only, so tini stays PID 1');
    // `npm run segment` is `node --import tsx services/segment-cli.ts`: the Job runs the same entry.
    const segment = pkg.scripts.segment!.split(' ');
    assert.deepEqual(c.args.slice(0, segment.length), segment);
    assert.equal(pod.restartPolicy, 'Never');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    const unknown = (c.env ?? []).map((e: { name: string }) => e.name).filter((n: string) => !CONFIG_VARIABLES.includes(n));
    assert.deepEqual(unknown, []);
  });

  test('every manifest file is listed by a kustomization (none silently left out)', () => {
    const files = yamlFiles(K8S);
    const referenced = new Set<string>();
    for (const k of files.filter((f) => basename(f) === 'kustomization.yaml')) {
      const spec = parse(readFileSync(k, 'utf8')) as { resources?: string[]; patches?: Array<{ path?: string }> };
      for (const r of spec.resources ?? []) referenced.add(resolve(dirname(k), r));
      for (const p of spec.patches ?? []) if (p.path) referenced.add(resolve(dirname(k), p.path));
    }
    const unlisted = files.filter((f) => basename(f) !== 'kustomization.yaml' && !referenced.has(f)).map((f) => relative(K8S, f));
    // The Secret example is deliberately outside every kustomization (tokens do not live in git).
    assert.deepEqual(unlisted, ['base/secret.example.yaml']);
    for (const f of files) for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) assert.deepEqual(d.errors, [], f);
  });
});

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );
}
