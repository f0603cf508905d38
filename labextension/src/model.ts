/**
 * What the panel and the status bar show: the workspace status, the selected
 * component's plan, and the poll that keeps them true to the files.
 *
 * The poll asks for the status with the last ETag; the server's tag changes whenever a
 * file of the workspace or of a component folder changes, so an unchanged workspace
 * costs an empty 304, and the plan is fetched again only when the tag moved. The lint
 * findings are polled beside it with their own tag (lint also reads the folders the
 * tool writes into, which the status tag does not cover).
 */

import { ISignal, Signal } from '@lumino/signaling';

import {
  ConductorApi,
  ConductorApiError,
  IComponentStatus,
  ILintProblem,
  IPlanResult,
  IStatus,
  ITask,
  IWorkspace
} from './api';

/** A task the user pointed at: the component and the task's number. */
export interface ITaskRef {
  id: string;
  task: string;
  name: string;
  line: number;
}

/** How often to poll: fast while someone looks, slow for the status bar only, or not. */
export type PollMode = 'fast' | 'slow' | 'paused';

/** The slow poll (status bar only) is this many times the configured interval. */
const SLOW_FACTOR = 10;

export class ConductorModel {
  constructor(readonly api: ConductorApi) {}

  /** Emitted after anything shown changed (status, plan, selection, error). */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted whenever the workspace's files changed (a new ETag). */
  get filesChanged(): ISignal<this, void> {
    return this._filesChanged;
  }

  get status(): IStatus | null {
    return this._status;
  }

  /** The findings of `conductor lint` (null until fetched, or when it failed). */
  get lint(): ILintProblem[] | null {
    return this._lint;
  }

  /** Why the last lint poll failed (cleared by the next good one). */
  get lintError(): string | null {
    return this._lintError;
  }

  get workspace(): IWorkspace | null {
    return this._workspace;
  }

  /** The plan of the selected component (null until fetched or when none). */
  get plan(): IPlanResult | null {
    return this._plan && this._plan.id === this._selected ? this._plan : null;
  }

  /** The last error of a poll (cleared by the next good one). */
  get error(): string | null {
    return this._error;
  }

  get selected(): string | null {
    return this._selected;
  }

  /** The selected component's status entry. */
  get component(): IComponentStatus | null {
    const id = this._selected;
    return this._status?.components.find(c => c.id === id) ?? null;
  }

  /** Select a component and fetch its plan. */
  async select(id: string): Promise<void> {
    if (id === this._selected) {
      return;
    }
    this._selected = id;
    this._changed.emit();
    await this.refresh(true);
  }

  /** Seconds between polls while the panel is visible (from the settings). */
  get interval(): number {
    return this._interval;
  }

  set interval(seconds: number) {
    this._interval = Math.max(0.5, seconds || 2);
    this.schedule();
  }

  /** Set the poll mode (the panel's visibility decides); a faster mode polls at once. */
  setMode(mode: PollMode): void {
    if (mode === this._mode) {
      return;
    }
    const faster = mode === 'fast' && this._mode !== 'fast';
    this._mode = mode;
    if (faster) {
      void this.refresh();
    } else {
      this.schedule();
    }
  }

  /**
   * Ask for the status (with the ETag unless `force`); when it changed, fetch the
   * workspace description (once) and the selected component's plan.
   */
  refresh(force = false): Promise<void> {
    // One request at a time: a refresh asked for meanwhile runs right after it.
    if (this._running) {
      this._again = true;
      this._forceAgain = this._forceAgain || force;
      return this._running;
    }
    this._running = this._refresh(force).finally(() => {
      this._running = null;
      if (this._again) {
        const again = this._forceAgain;
        this._again = false;
        this._forceAgain = false;
        void this.refresh(again);
      } else {
        this.schedule();
      }
    });
    return this._running;
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    Signal.clearData(this);
  }

  private async _refresh(force: boolean): Promise<void> {
    try {
      // Both at once: one round trip of latency per poll, whatever lint answers.
      const [poll, lintChanged] = await Promise.all([
        this.api.status(force ? null : this._etag),
        this.pollLint(force)
      ]);
      let changed = false;
      if (poll.changed) {
        this._status = poll.value;
        this._etag = poll.etag;
        changed = true;
        const ids = poll.value.components.map(c => c.id);
        if (!this._selected || !ids.includes(this._selected)) {
          this._selected = defaultSelection(poll.value);
        }
        const known = this._workspace?.components ?? [];
        if (!this._workspace || ids.some(id => !known.includes(id))) {
          this._workspace = await this.api.workspace();
        }
      }
      const id = this._selected;
      if (id && (changed || !this._plan || this._plan.id !== id)) {
        try {
          this._plan = await this.api.plan(id);
          this._planError = null;
        } catch (error) {
          // A plan that cannot be read: the status's problems say why; keep the old tree.
          this._planError = messageOf(error);
        }
        changed = true;
      }
      const wasError = this._error !== null;
      this._error = this._planError;
      if (changed || lintChanged || wasError !== (this._error !== null)) {
        this._changed.emit();
      }
      if (poll.changed) {
        this._filesChanged.emit();
      }
    } catch (error) {
      const message = messageOf(error);
      if (message !== this._error) {
        this._error = message;
        this._changed.emit();
      }
    }
  }

  /** Ask for the lint findings (with their ETag unless `force`); true when they changed. */
  private async pollLint(force: boolean): Promise<boolean> {
    try {
      const poll = await this.api.lint(force ? null : this._lintEtag);
      const hadError = this._lintError !== null;
      this._lintError = null;
      if (poll.changed) {
        this._lint = poll.value.problems;
        this._lintEtag = poll.etag;
      }
      return poll.changed || hadError;
    } catch (error) {
      // The status poll reports a missing workspace; lint only says it could not run.
      const message = messageOf(error);
      const changed = message !== this._lintError || this._lint !== null;
      this._lint = null;
      this._lintEtag = null;
      this._lintError = message;
      return changed;
    }
  }

  /** Arm the next poll for the current mode. */
  private schedule(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    if (this._disposed || this._mode === 'paused' || this._running) {
      return;
    }
    const seconds = this._interval * (this._mode === 'slow' ? SLOW_FACTOR : 1);
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this.refresh();
    }, seconds * 1000);
  }

  private _changed = new Signal<this, void>(this);
  private _filesChanged = new Signal<this, void>(this);
  private _status: IStatus | null = null;
  private _etag: string | null = null;
  private _lint: ILintProblem[] | null = null;
  private _lintEtag: string | null = null;
  private _lintError: string | null = null;
  private _workspace: IWorkspace | null = null;
  private _plan: IPlanResult | null = null;
  private _planError: string | null = null;
  private _error: string | null = null;
  private _selected: string | null = null;
  private _interval = 2;
  private _mode: PollMode = 'slow';
  private _timer: number | null = null;
  private _running: Promise<void> | null = null;
  private _again = false;
  private _forceAgain = false;
  private _disposed = false;
}

/** In Progress before anything else, else the first component. */
function defaultSelection(status: IStatus): string | null {
  const busy = status.components.find(c =>
    (c.status ?? '').toLowerCase().replace(/[_\s-]+/g, ' ').includes('in progress')
  );
  return busy?.id ?? status.components[0]?.id ?? null;
}

/** The one line an error says. */
export function messageOf(error: unknown): string {
  if (error instanceof ConductorApiError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Find a task or sub-task by number. */
export function findTask(plan: IPlanResult, number: string): ITask | null {
  const walk = (tasks: ITask[]): ITask | null => {
    for (const task of tasks) {
      if (task.number === number) {
        return task;
      }
      const found = walk(task.subtasks);
      if (found) {
        return found;
      }
    }
    return null;
  };
  for (const phase of plan.plan.phases) {
    const found = walk(phase.tasks);
    if (found) {
      return found;
    }
  }
  return null;
}
