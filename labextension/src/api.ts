/**
 * The typed REST client of the Conductor server extension (conductor_magics/server).
 *
 * Every route answers the same JSON as the CLI's `--json` (`conductor status --json`,
 * `conductor plan <id> --json`, ...). Requests go through `ServerConnection.makeRequest`
 * so the server's token and XSRF cookie are sent like for every JupyterLab request.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A task mark as plan.md spells it. */
export type TaskState = 'todo' | 'done' | 'in_progress' | 'skipped' | 'blocked';

/** The action a tick (or a context-menu entry) asks for. */
export type TaskAction = 'done' | 'undo' | 'start' | 'skip' | 'block';

/** The `[ ]` mark of each state (what `expect` sends back). */
export const MARK: Record<TaskState, string> = {
  todo: '[ ]',
  done: '[x]',
  in_progress: '[~]',
  skipped: '[-]',
  blocked: '[!]'
};

/** One component of `conductor status --json`. */
export interface IComponentStatus {
  id: string;
  title: string | null;
  status: string | null;
  storage_type?: string | null;
  backend?: string | null;
  tasks_total: number;
  tasks_done: number;
  subtasks_total: number;
  subtasks_done: number;
  current_phase: string | null;
  next_task: string | null;
  /** "path:line: message" lines (path absolute on the server). */
  problems: string[];
}

/** `conductor status --json`. */
export interface IStatus {
  components: IComponentStatus[];
  problems: string[];
}

/** One finding of `conductor lint --json`. */
export interface ILintProblem {
  severity: 'error' | 'warning' | string;
  /** Absolute on the server; null when the finding is about no file. */
  file: string | null;
  /** 1-based line, null when the finding is about the whole file. */
  line: number | null;
  code: string;
  message: string;
  fixable: boolean;
}

/** `conductor lint --json`. */
export interface ILint {
  workspace: string;
  problems: ILintProblem[];
  fixed: string[];
}

/** `GET conductor/api/workspace`. */
export interface IWorkspace {
  /** The storage-conductor folder relative to the server root (POSIX), null when outside it. */
  workspace: string | null;
  /** Its absolute path on the server (to shorten problem paths), when known. */
  path?: string | null;
  components: string[];
  /** Per component: plan.md, spec.md and verification.json relative to the server root. */
  files?: Record<string, { plan: string | null; spec: string | null; verification: string | null }>;
}

/** A task or sub-task of `conductor plan <id> --json`. */
export interface ITask {
  number: string;
  name: string;
  state: TaskState;
  /** 1-based line in plan.md. */
  line: number;
  sha: string | null;
  subtasks: ITask[];
}

/** The phase summary carried by task and gate results. */
export interface IPhaseSummary {
  number: number;
  title: string;
  kind: string | null;
  finished: boolean;
  verified: boolean;
  checkpoint: string | null;
  locked: boolean;
  lock_reason: string | null;
  tasks_total: number;
  tasks_done: number;
  subtasks_total: number;
  subtasks_done: number;
  verdict?: IVerdict | null;
}

/** A phase of `conductor plan <id> --json`. */
export interface IPhase extends IPhaseSummary {
  /** 1-based line of the phase heading in plan.md. */
  line: number;
  tasks: ITask[];
}

/** What `next` says: the task to work on, or the phase waiting for verification. */
export interface INext {
  id: string;
  action: string;
  phase: { number: number; title: string } | null;
  task: { number: string; name: string; state: TaskState } | null;
  reason: string | null;
}

/** `conductor plan <id> --json`. */
export interface IPlanResult {
  id: string;
  status: string | null;
  plan: {
    path: string;
    tasks_total: number;
    tasks_done: number;
    subtasks_total: number;
    subtasks_done: number;
    phases: IPhase[];
  };
  next: INext | null;
}

/** `POST conductor/api/task/<id>`: the task result. */
export interface ITaskResult {
  id: string;
  task: { number: string; name: string; line: number };
  before: TaskState;
  after: TaskState;
  changed: boolean;
  forced: boolean;
  phase: IPhaseSummary;
  phase_finished: boolean;
  next: INext | null;
}

/** One automated check of a gate. */
export interface ICheck {
  check: string;
  status: 'pass' | 'fail' | 'skip' | 'error' | string;
  detail: string | null;
  seconds: number | null;
}

/** A recorded verdict (one record of verification.json). */
export interface IVerdict {
  kind: string;
  phase: number;
  verdict: string;
  note: string;
  by: string;
  at: string;
  checks: ICheck[] | null;
  waivers: Record<string, string>;
}

/** `POST conductor/api/verify/<id>`: the gate result. */
export interface IGateResult {
  id: string;
  phase: IPhaseSummary;
  verified: boolean;
  recorded: IVerdict | null;
  already_verified: boolean;
  checks: ICheck[] | null;
  waivers: Record<string, string>;
}

/** The body of `POST conductor/api/verify/<id>`. */
export interface IVerifyRequest {
  phase: number;
  run_checks?: boolean;
  waive?: Record<string, string>;
  /** The note; without it the gate and the checks are only shown, nothing is recorded. */
  confirm?: string;
}

/** A refused or failed request: the HTTP status and the server's one-line reason. */
export class ConductorApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly kind: string | null = null,
    readonly file: string | null = null,
    readonly line: number | null = null
  ) {
    super(message);
    this.name = 'ConductorApiError';
  }
}

/** A conditional GET: unchanged (304 for the ETag sent), or the new value and its tag. */
export type Poll<T> = { changed: false } | { changed: true; value: T; etag: string | null };

/** A poll of `conductor status --json`. */
export type StatusPoll = Poll<IStatus>;

/** A poll of `conductor lint --json`. */
export type LintPoll = Poll<ILint>;

const API = 'conductor/api';

/** The client: one instance per JupyterLab, over the app's server settings. */
export class ConductorApi {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** `conductor status --json`; with `etag`, a 304 comes back as `{changed: false}`. */
  status(etag?: string | null): Promise<StatusPoll> {
    return this.poll<IStatus>('status', etag);
  }

  /**
   * `conductor lint --json` (findings are a 200, not an error); with `etag`, a 304
   * comes back as `{changed: false}`.
   */
  lint(etag?: string | null): Promise<LintPoll> {
    return this.poll<ILint>('lint', etag);
  }

  /** Where storage-conductor/ is, relative to the server root, and its components. */
  async workspace(): Promise<IWorkspace> {
    return (await this.json(await this.request('GET', 'workspace'))) as IWorkspace;
  }

  /** `conductor plan <id> --json`. */
  async plan(id: string): Promise<IPlanResult> {
    return (await this.json(
      await this.request('GET', `plan/${encodeURIComponent(id)}`)
    )) as IPlanResult;
  }

  /**
   * Mark a task. `expect` is the mark the caller showed (`[ ]`, `[x]`, ...): when the
   * plan says otherwise by now, nothing is written and a 409 error comes back.
   */
  async task(
    id: string,
    action: TaskAction,
    task: string,
    expect?: string
  ): Promise<ITaskResult> {
    const body: Record<string, string> = { action, task };
    if (expect !== undefined) {
      body.expect = expect;
    }
    return (await this.json(
      await this.request('POST', `task/${encodeURIComponent(id)}`, body)
    )) as ITaskResult;
  }

  /** A phase's gate: run the checks, and with `confirm` record the verdict. */
  async verify(id: string, request: IVerifyRequest): Promise<IGateResult> {
    return (await this.json(
      await this.request('POST', `verify/${encodeURIComponent(id)}`, request)
    )) as IGateResult;
  }

  /** GET `route` conditionally on `etag` (the server answers 304 when nothing changed). */
  private async poll<T>(route: string, etag?: string | null): Promise<Poll<T>> {
    const response = await this.request('GET', route, undefined, ifNoneMatch(etag));
    if (response.status === 304) {
      return { changed: false };
    }
    const value = (await this.json(response)) as T;
    return { changed: true, value, etag: response.headers.get('ETag') };
  }

  private async request(
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {}
  ): Promise<Response> {
    const url = URLExt.join(this.settings.baseUrl, API, route);
    const init: RequestInit = {
      method,
      // The ETag is ours to send: the browser's cache must neither answer nor revalidate.
      cache: 'no-store',
      headers: { ...headers }
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new ConductorApiError(
        0,
        `the Jupyter server did not answer ${method} ${route}: ${String(error)}`
      );
    }
    if (response.status >= 400) {
      throw await errorOf(response, method, route);
    }
    return response;
  }

  private async json(response: Response): Promise<unknown> {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new ConductorApiError(
        response.status,
        `the server's answer is not JSON: ${text.slice(0, 200)}`
      );
    }
  }
}

function ifNoneMatch(etag?: string | null): Record<string, string> {
  return etag ? { 'If-None-Match': etag } : {};
}

async function errorOf(
  response: Response,
  method: string,
  route: string
): Promise<ConductorApiError> {
  const text = await response.text();
  try {
    const data = JSON.parse(text);
    // Our routes answer {"error": ...}; jupyter_server's own errors {"message": ...}.
    const message = data.error ?? data.message ?? text;
    return new ConductorApiError(
      response.status,
      String(message),
      data.kind ?? null,
      data.file ?? null,
      typeof data.line === 'number' ? data.line : null
    );
  } catch {
    const reason =
      response.status === 404
        ? 'is the conductor_magics server extension enabled? (jupyter server extension list)'
        : text.slice(0, 200);
    return new ConductorApiError(
      response.status,
      `${method} ${route} failed with HTTP ${response.status}: ${reason}`
    );
  }
}
