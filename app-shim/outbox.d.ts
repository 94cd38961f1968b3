// Types for the sw-outbox page shim (outbox.js). Shapes follow
// the README's "Protocol" section, protocol version 1, field for field.

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Lifecycle of a queued request; see the entry state diagram in src/core. */
export type EntryState =
  | 'pending'
  | 'in_flight'
  | 'waiting_retry'
  | 'paused_auth'
  | 'conflict'
  | 'failed'
  | 'blocked'
  | 'cancelled'
  | 'superseded'
  | 'done';

export type Priority = 'low' | 'normal' | 'high' | 'critical';

/** Which side of a conflict is kept. */
export type Resolution = 'local' | 'remote' | 'merged';

/** Why an entry is `failed`. */
export type Failure =
  | { reason: 'http_status'; status: number }
  | { reason: 'max_attempts' }
  | { reason: 'expired' }
  | { reason: 'invalid'; message: string };

export interface Entry {
  id: number;
  method: string;
  url: string;
  /** The route's `kind`, when it has one. */
  kind: string | null;
  /** Entity key: entries with the same key replay in order (null: no ordering). */
  entity: string | null;
  priority: Priority;
  state: EntryState;
  attempts: number;
  /** Milliseconds since the epoch, like every time below. */
  createdAt: number;
  lastAttemptAt: number | null;
  nextAttemptAt: number | null;
  lastError: string | null;
  /** Set when `state` is `failed`. */
  failure: Failure | null;
  dependsOn: number[];
  idempotencyKey: string;
  /** Body length in bytes. */
  bodyBytes: number;
  /** Set when `state` is `conflict`. */
  conflict: ConflictInfo | null;
  /** The user current (`setUser`) when it was stored; null: none, never held. */
  user: string | null;
}

/** What a conflict that waits for a page is about. */
export interface ConflictInfo {
  status: number;
  remote: Json;
  remoteEtag: string | null;
  /** JSON pointers of the fields changed both ways. */
  pointers: string[];
  reason: string;
}

/** Count of entries in each state; finished (`done`) entries are not counted. */
export type StatusCounts = Record<Exclude<EntryState, 'done'>, number>;

export interface Status {
  online: boolean;
  counts: StatusCounts;
  total: number;
  /** Entries a drain has taken to send: on the network or next in line. */
  inFlight: number;
  /** Null until a request has gone through. */
  lastSuccessAt: number | null;
  draining: boolean;
  /** Progress of the current drain. */
  progress: { done: number; total: number };
  /**
   * Stored records that could not be read and could not be moved aside
   * either (normally empty); they are skipped, not deleted.
   */
  unreadable: { id: number; message: string }[];
  /** Records that could not be read, moved aside; `clear(['corrupt'])` removes them. */
  corrupt: number;
  /** The current user (`setUser`), or null. */
  user: string | null;
  /** Open entries of other users, held until their user is current again. */
  held: number;
  /** Why the queue's storage could not be opened, if it could not. */
  storeError: string | null;
  /**
   * Whether the origin's storage is persistent (`navigator.storage.persisted()`),
   * so the browser will not evict the queue under pressure; null where the
   * API is missing. Ask for it with `register(url, {persist: true})`.
   */
  persisted: boolean | null;
}

// ---- event details -------------------------------------------------------

export interface QueuedDetail {
  entry: Entry;
}

export interface SentDetail {
  entry: Entry;
  status: number;
  contentType: string | null;
  /** Parsed JSON, text, or null when the response had no body. */
  body: Json;
}

/** An entry became a dead letter (`entry` set), or a request could not be
 * queued or a stored record read (`entry` null). */
export type FailedDetail =
  | (Failure & { entry: Entry; message: string; body?: Json })
  | {
      entry: null;
      reason: 'body_too_large' | 'queue_full' | 'quota' | 'storage' | 'corrupt';
      message: string;
      /** The unreadable record's id, for `corrupt`. */
      id?: number;
      /** For `corrupt`: true when the record was moved to the `corrupt` store. */
      movedAside?: boolean;
    };

/** Entries removed unsent at the page's request (`logout({discard: true})`). */
export interface DiscardedDetail {
  entries: Entry[];
  reason: 'logout';
  /** The user whose entries they were. */
  user: string;
}

export interface ConflictDetail {
  entry: Entry;
  base: Json;
  local: Json;
  remote: Json;
  /** JSON pointers (e.g. "/label") of the fields changed both ways. */
  pointers: string[];
  /** Why it was left to the page. */
  reason: string;
}

export interface ResolvedDetail {
  entry: Entry;
  kept: Resolution;
}

export interface AuthRequiredDetail {
  entry: Entry;
  /** The status that paused it; null when reported again after a worker restart. */
  status: 401 | 403 | null;
}

/** Event name -> `detail` of the CustomEvent dispatched on an Outbox. */
export interface OutboxEventMap {
  status: Status;
  queued: QueuedDetail;
  sent: SentDetail;
  failed: FailedDetail;
  conflict: ConflictDetail;
  resolved: ResolvedDetail;
  'auth-required': AuthRequiredDetail;
  discarded: DiscardedDetail;
}

// ---- raw messages (README, "Protocol") -------------------------------------

/** What `clear` removes: entries in these states, and `corrupt` records. */
export type ClearTarget = EntryState | 'corrupt';

export interface EntriesFilter {
  states?: EntryState[];
}

/** Protocol features a page can read; `events`: several events in one message. */
export type ProtocolFeature = 'events';

/**
 * Page -> worker, sent with one end of a MessageChannel. Any command may
 * carry `features`: the worker then uses those it knows for this page.
 */
export type OutboxCommand = { features?: ProtocolFeature[] } & (
  | { outbox: 1; id: number; type: 'status' }
  | { outbox: 1; id: number; type: 'entries'; filter?: EntriesFilter }
  | { outbox: 1; id: number; type: 'flush' }
  | { outbox: 1; id: number; type: 'retry'; entry: number | 'failed' }
  | { outbox: 1; id: number; type: 'cancel'; entry: number }
  | { outbox: 1; id: number; type: 'clear'; states?: ClearTarget[] }
  | { outbox: 1; id: number; type: 'user'; user: string | null; headers?: Record<string, string> }
  | { outbox: 1; id: number; type: 'logout'; discard?: boolean }
  | { outbox: 1; id: number; type: 'auth'; headers: Record<string, string> }
  | ({ outbox: 1; id: number; type: 'resolve'; entry: number } & ResolveOptions)
  /** Only names `features`, before any other command. */
  | { outbox: 1; id: number; type: 'hello' });

/** The `result` of an `ok` reply, per command type. */
export interface OutboxResults {
  status: Status;
  entries: { entries: Entry[] };
  flush: Status;
  retry: { retried: number[] };
  cancel: { cancelled: number };
  clear: { removed: number };
  auth: { resumed: number };
  resolve: { resolved: number; kept: Resolution };
  user: { user: string | null; held: number };
  logout: { user: null; previous: string | null; discarded: number[]; held: number };
  /** The features the worker offers. */
  hello: { features: ProtocolFeature[] };
}

/** Names one `events` envelope: the worker instance that posted it and its number. */
export interface EnvelopeMark {
  worker: string;
  seq: number;
}

/**
 * Worker -> page, exactly one per command, on the command's port. `after`
 * (to a page that reads envelopes) names the last envelope posted to the
 * page before the reply: the shim settles the reply once it has dispatched
 * that envelope's events.
 */
export type OutboxReply<Result = unknown> = { after?: EnvelopeMark } & (
  | { outbox: 1; id: number; type: 'ok'; result: Result }
  /** `id` is null when the command was too malformed to read one. */
  | { outbox: 1; id: number | null; type: 'error'; message: string });

/** One event. */
export type OutboxEvent = {
  [K in keyof OutboxEventMap]: { event: K; detail: OutboxEventMap[K] };
}[keyof OutboxEventMap];

/**
 * Worker -> every window client: each event alone, or, to a page that
 * named the `events` feature, a batch of events in order in one message.
 */
export type OutboxEventMessage =
  | ({ outbox: 1; type: 'event' } & OutboxEvent)
  | ({ outbox: 1; type: 'events'; events: OutboxEvent[] } & EnvelopeMark);

// ---- the shim ------------------------------------------------------------

export interface RegisterOptions {
  /** Passed to navigator.serviceWorker.register. */
  scope?: string;
  /** How long a command waits for its reply (and for a controller). Default 10000. */
  timeoutMs?: number;
  /** How long `register` waits for the worker to control the page. Default 15000. */
  controlTimeoutMs?: number;
  /** Send `flush` when the window fires `online`. Default true. */
  flushOnOnline?: boolean;
  /** Send `flush` when the page becomes visible. Default true. */
  flushOnVisible?: boolean;
  /** Ask `navigator.storage.persist()` while registering; the answer shows in `status().persisted`. Default false. */
  persist?: boolean;
}

/** Either discard the signing-out user's queued entries or keep them held. */
export type LogoutOptions = { discard: true; keep?: false } | { keep?: boolean; discard?: false };

/** `merged` sends the body the page gives, so it needs one. */
export type ResolveOptions =
  | { use: 'local' | 'remote'; body?: Json }
  | { use: 'merged'; body: Json };

/** Returns fresh auth headers for replayed requests (never stored). */
export type AuthProvider = () => HeadersInit | Promise<HeadersInit>;

export type OutboxEventListener<K extends keyof OutboxEventMap> =
  (this: Outbox, event: CustomEvent<OutboxEventMap[K]>) => void;

export declare class Outbox extends EventTarget {
  private constructor();

  /**
   * Registers the service worker and resolves once it controls the page.
   * Rejects without service worker support, when registration fails, or
   * when the page is not controlled within `controlTimeoutMs`.
   */
  static register(scriptUrl: string | URL, options?: RegisterOptions): Promise<Outbox>;

  readonly registration: ServiceWorkerRegistration;

  status(): Promise<Status>;
  entries(filter?: EntriesFilter): Promise<Entry[]>;
  /** Never times out: resolves when the drain it started or joined ends. */
  flush(): Promise<Status>;
  retry(entry: number | 'failed'): Promise<OutboxResults['retry']>;
  cancel(entry: number): Promise<OutboxResults['cancel']>;
  /**
   * Without `states`, removes every entry, unsent ones included, and every
   * record set aside as corrupt; `'corrupt'` in the list names those.
   */
  clear(states?: ClearTarget[]): Promise<OutboxResults['clear']>;
  /**
   * Makes `user` the current user (null: none). Entries stored from now on
   * carry it; entries of other users are held, never sent with this user's
   * credentials, until their user is current again. Kept across worker
   * restarts. Auth headers given for the previous user are forgotten; the
   * `setAuth` provider, if any, is asked for the new user's, which the
   * worker takes in the same step as the switch.
   */
  setUser(user: string | null): Promise<OutboxResults['user']>;
  /**
   * The current user signs out; then there is no current user. `discard`
   * removes their queued entries (reported in a `discarded` event); `keep`
   * (the default) holds them until that user is current again.
   */
  logout(options?: LogoutOptions): Promise<OutboxResults['logout']>;
  resolve(entry: number, options: ResolveOptions): Promise<OutboxResults['resolve']>;
  /**
   * Keeps `provider` to answer `auth-required` events, and sends its headers
   * once now so entries paused for auth resume.
   */
  setAuth(provider: AuthProvider): Promise<OutboxResults['auth']>;
  /** Stops events and automatic flushes. Commands still work. */
  close(): void;

  addEventListener<K extends keyof OutboxEventMap>(
    type: K,
    listener: OutboxEventListener<K>,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof OutboxEventMap>(
    type: K,
    listener: OutboxEventListener<K>,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}
