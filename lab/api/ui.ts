import type { Server } from 'node:http';
import { ExitCode, LabError } from '../errors.js';
import { log } from '../log.js';
import { preflight, requireRoot } from '../kernel/preflight.js';
import { EventHub, HttpError, listenLoopback, LOOPBACK, newToken, sendHtml, type Routes } from '../ui/http.js';
import { uiPage } from '../ui/page.js';
import { labPicture } from '../ui/picture.js';
import { checkedRequest, conntrackLines, labView, podsLive, sendAndWalk, type LabView } from './ui-actions.js';
import { webChallenges, type WebChallenges } from './ui-challenge.js';
import { startWebWorkshop, type WebWorkshop } from './ui-workshop.js';

/**
 * `lab ui`: the live page of one running lab, served on 127.0.0.1 behind a random token. The
 * pods' readiness and the NAT node's conntrack table are polled and pushed to the page as
 * server-sent events; a request sent from the page streams its captures, then its walk.
 */

export interface LabUi {
  url: string;
  port: number;
  close(): Promise<void>;
}

const PODS_EVERY_MS = 1000;
const CONNTRACK_EVERY_MS = 2000;

interface UiState {
  lab: string;
  view: LabView;
  hub: EventHub;
  workshop?: WebWorkshop;
  challenges: WebChallenges;
  /** The node whose conntrack the page watches: the last walk's NAT node, or the one picked. */
  natNode: string;
  sending: boolean;
  last: Map<string, string>;
}

/** Send `data` as `event` when it differs from what was sent last under `key`. */
function pushChanged(s: UiState, key: string, event: string, data: unknown): void {
  const text = JSON.stringify(data);
  if (s.last.get(key) === text) return;
  s.last.set(key, text);
  s.hub.broadcast(event, data);
}

async function poll(s: UiState, what: 'pods' | 'conntrack'): Promise<void> {
  try {
    if (what === 'pods') {
      pushChanged(s, 'pods', 'pods', podsLive(s.lab));
      pushChanged(s, 'break-state', 'break-state', s.challenges.state());
    } else pushChanged(s, 'conntrack', 'conntrack', { node: s.natNode, lines: await conntrackLines(s.lab, s.natNode) });
  } catch (err) {
    pushChanged(s, what, what === 'pods' ? 'pods' : 'conntrack', { error: err instanceof Error ? err.message : String(err) });
  }
}

function startSend(s: UiState, body: unknown): { accepted: true } {
  const req = checkedRequest(s.view, body);
  if (s.sending) throw new HttpError(409, 'a request is already on its way: wait for its walk');
  s.sending = true;
  s.hub.broadcast('walk-start', req);
  const emit = (event: string) => (data: unknown) => s.hub.broadcast(event, data);
  sendAndWalk(s.lab, req, { onPacket: emit('packet'), onProgress: emit('walk-progress') })
    .then((walk) => {
      if (walk.natNode) s.natNode = walk.natNode;
      s.hub.broadcast('walk', walk);
      void poll(s, 'conntrack');
    })
    .catch((err: unknown) => s.hub.broadcast('walk-error', { error: err instanceof Error ? err.message : String(err) }))
    .finally(() => (s.sending = false));
  return { accepted: true };
}

function routes(s: UiState, token: string): Routes {
  const picture = labPicture(s.view.topology);
  const page = uiPage({ lab: s.lab, token, picture, senders: s.view.senders, destinations: s.view.destinations, nodes: s.view.nodes, natNode: s.natNode, workshop: Boolean(s.workshop), faults: s.challenges.faults });
  return {
    'GET /': (_req, _body, res) => sendHtml(res, page),
    'GET /events': (req, _body, res) => s.hub.open(req, res),
    'GET /api/lab': () => ({ lab: s.lab, senders: s.view.senders, destinations: s.view.destinations, nodes: s.view.nodes }),
    'POST /api/send': (_req, body) => startSend(s, body),
    'POST /api/conntrack': (_req, body) => {
      const node = (body as { node?: unknown } | undefined)?.node;
      if (typeof node !== 'string' || !s.view.nodes.includes(node)) throw new LabError(`node: expected one of ${s.view.nodes.join(', ')}`, ExitCode.badInput);
      s.natNode = node;
      void poll(s, 'conntrack');
      return { node };
    },
    'POST /api/workshop': (_req, body) => {
      if (!s.workshop) throw new HttpError(404, `lab ${s.lab}'s scenario has no workshop`);
      s.workshop.answer((body as { line?: unknown } | undefined)?.line);
      return { ok: true };
    },
    'GET /api/faults': () => ({ applicable: s.challenges.faults, ...s.challenges.state() }),
    'POST /api/challenge/start': (_req, body) => s.challenges.start(body),
    'POST /api/challenge': (_req, body) => {
      s.challenges.answer((body as { line?: unknown } | undefined)?.line);
      return { ok: true };
    },
    'POST /api/repair': async () => ({ repaired: (await s.challenges.repair()).map((r) => r.fault) }),
  };
}

/** The node a connection from outside first reaches: the one holding the NodePort the page lists first, else node one. */
function entryNode(view: LabView): string {
  const viaNode = view.destinations.find((d) => d.what.includes(' NodePort on '));
  return viaNode ? viaNode.what.slice(viaNode.what.lastIndexOf(' ') + 1) : view.nodes[0] ?? '';
}

export async function startLabUi(lab: string, opts: { port?: number } = {}): Promise<LabUi> {
  requireRoot();
  preflight(['ip', 'tcpdump', 'conntrack', 'curl']);
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LabError(`--port ${opts.port}: expected a port number, 0-65535 (0: any free port)`, ExitCode.badInput);
  const view = labView(lab);
  // A page that connects late first gets the latest of each live view.
  const replay = () => [
    ...['pods', 'conntrack', 'break-state'].flatMap((k) => (s.last.has(k) ? [{ event: k, data: JSON.parse(s.last.get(k)!) as unknown }] : [])),
    ...(s.workshop?.replay() ?? []),
    ...s.challenges.replay(),
  ];
  // The break state goes out as the poll's does (only when it changed); the challenge's text as it comes.
  const challenges = webChallenges(lab, (event, data) => (event === 'break-state' ? pushChanged(s, event, event, data) : s.hub.broadcast(event, data)));
  const s: UiState = { lab, view, natNode: entryNode(view), sending: false, last: new Map(), hub: new EventHub(replay), challenges };
  s.workshop = startWebWorkshop(lab, (event, data) => s.hub.broadcast(event, data));
  const token = newToken();
  const { server, port: bound } = await listenLoopback(routes(s, token), token, port);
  await Promise.all([poll(s, 'pods'), poll(s, 'conntrack')]);
  const timers = [setInterval(() => void poll(s, 'pods'), PODS_EVERY_MS), setInterval(() => void poll(s, 'conntrack'), CONNTRACK_EVERY_MS)];
  log.debug({ lab, port: bound }, 'lab ui listening');
  return { url: `http://${LOOPBACK}:${bound}/?token=${token}`, port: bound, close: () => closeUi(server, s.hub, timers) };
}

async function closeUi(server: Server, hub: EventHub, timers: NodeJS.Timeout[]): Promise<void> {
  timers.forEach(clearInterval);
  hub.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
