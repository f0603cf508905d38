/**
 * What the core plugin shares with the others: the one REST client, the model that
 * polls it, the open workspace documents and the control of how fast the poll runs.
 */

import { ReadonlyPartialJSONObject, Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';

import { ConductorApi } from './api';
import { WorkspaceDocuments } from './documents';
import { ConductorModel, ITaskRef, PollMode } from './model';

/** The plugin ids (the settings of a plugin are at lab/api/settings/<id>). */
export namespace PluginIDs {
  export const core = 'conductor-magics:core';
  export const panel = 'conductor-magics:panel';
  export const notebook = 'conductor-magics:notebook';
  export const statusbar = 'conductor-magics:statusbar';
}

export namespace CommandIDs {
  export const openPanel = 'conductor:open-panel';
  export const refresh = 'conductor:refresh';
  export const insertTaskCell = 'conductor:insert-task-cell';
  export const openPlan = 'conductor:open-plan';
  export const markTask = 'conductor:mark-task';
}

/** Where the commands find the task they act on when their arguments name none. */
export interface ITaskPicker {
  /** The task last clicked or right-clicked. */
  readonly selectedTask: ITaskRef | null;
  /** The task the plan says to work on next. */
  readonly nextTask: ITaskRef | null;
}

/**
 * How fast the model polls: the fastest mode any registered watcher asks for, and
 * paused when nobody asks (nothing on screen needs the files).
 */
export interface IPollingControl {
  /** The mode in force. */
  readonly mode: PollMode;
  /** Add a watcher; `mode` is asked on every update. Dispose to remove it. */
  add(mode: () => PollMode): IDisposable;
  /** Ask every watcher again (call it when what a watcher answers may have changed). */
  update(): void;
}

export interface IConductor {
  /** The typed client of the server extension's REST routes. */
  readonly api: ConductorApi;
  /** The workspace status, the selected plan and the poll. */
  readonly model: ConductorModel;
  /** Opens workspace files and keeps open editors true to the disk. */
  readonly documents: WorkspaceDocuments;
  /** The poll's speed, decided by whoever looks. */
  readonly polling: IPollingControl;
  /** The server-root paths of every component's plan.md. */
  planPaths(): string[];
  /** Let the commands act on `picker`'s task when their arguments name none. */
  setTaskPicker(picker: ITaskPicker): IDisposable;
  /** The task a command acts on: its arguments, else the picker's selected, else next. */
  taskOf(args: ReadonlyPartialJSONObject): ITaskRef | null;
}

export const IConductor = new Token<IConductor>(
  'conductor-magics:IConductor',
  'The Conductor REST client, model, workspace documents and poll control.'
);
