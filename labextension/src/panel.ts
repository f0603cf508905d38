/**
 * The Conductor side panel (plain DOM in a Lumino widget): every component with its
 * status, progress, current phase, next task and problems (the status's and lint's, each
 * a file:line link); the selected component's
 * plan as a tree of checkboxes. A tick asks the server for a one-byte edit with the
 * mark the panel showed (`expect`); a refused tick puts the box back and says why.
 */

import { Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import {
  IComponentStatus,
  ILintProblem,
  IPhase,
  IPlanResult,
  ITask,
  MARK,
  TaskAction,
  TaskState
} from './api';
import { conductorIcon } from './icon';
import { ConductorModel, findTask, ITaskRef, messageOf } from './model';

export const PANEL_ID = 'conductor-panel';

/** The rows of the panel's tasks (the context menus' selector). */
export const TASK_SELECTOR = '.jp-conductor-panel .jp-conductor-task-row';

/** What the panel asks the application to do (open files, gates). */
export interface IPanelActions {
  /** Open a file relative to the server root, at a 1-based line when given. */
  openFile(path: string, line?: number): void;
  /** Open the gate dialog of a finished phase. */
  verify(id: string, phase: IPhase): void;
}

const STATE_TITLE: Record<TaskState, string> = {
  todo: 'to do',
  done: 'done',
  in_progress: 'in progress',
  skipped: 'skipped',
  blocked: 'blocked'
};

export class ConductorPanel extends Widget {
  constructor(readonly model: ConductorModel, private actions: IPanelActions) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-conductor-panel');
    this.title.icon = conductorIcon;
    this.title.caption = 'Conductor';
    this.node.tabIndex = 0;
    model.changed.connect(() => this.render(), this);
    this.render();
  }

  /** Emitted when the panel is shown or hidden (the poll follows it). */
  get visibilityChanged(): ISignal<this, boolean> {
    return this._visibilityChanged;
  }

  /** The task last clicked or right-clicked (the commands act on it). */
  get selectedTask(): ITaskRef | null {
    return this._selectedTask;
  }

  /** The task of the current component the plan says to work on next. */
  get nextTask(): ITaskRef | null {
    const plan = this.model.plan;
    const number = plan?.next?.task?.number;
    const task = plan && number ? findTask(plan, number) : null;
    return plan && task
      ? { id: plan.id, task: task.number, name: task.name, line: task.line }
      : null;
  }

  /** Tick or mark a task through the server; refused → the box goes back, and why. */
  async mark(
    id: string,
    task: string,
    action: TaskAction,
    shown: TaskState,
    box?: HTMLInputElement
  ): Promise<boolean> {
    this._pending++;
    if (box) {
      box.disabled = true;
    }
    try {
      await this.model.api.task(id, action, task, MARK[shown]);
      return true;
    } catch (error) {
      if (box) {
        box.checked = shown === 'done';
      }
      const reason = this.shorten(messageOf(error));
      Notification.error(`${id}: task ${task} was not marked ${action}: ${reason}`, {
        autoClose: 8000
      });
      return false;
    } finally {
      this._pending--;
      if (box) {
        box.disabled = false;
      }
      await this.model.refresh(true);
    }
  }

  protected onAfterShow(): void {
    this._visibilityChanged.emit(true);
  }

  protected onAfterHide(): void {
    this._visibilityChanged.emit(false);
  }

  /** Rebuild the DOM from the model (kept simple: the tree is a few hundred nodes). */
  render(): void {
    if (this._pending > 0) {
      return; // a tick in flight re-renders when it is answered
    }
    const scroll = this.node.scrollTop;
    const node = this.node;
    node.textContent = '';
    node.appendChild(this.renderHeader());
    const model = this.model;
    if (model.error) {
      node.appendChild(el('div', 'jp-conductor-error', model.error));
    }
    const status = model.status;
    if (!status) {
      node.appendChild(
        el('div', 'jp-conductor-empty', model.error ? '' : 'Reading the workspace…')
      );
      return;
    }
    if (status.components.length === 0) {
      node.appendChild(
        el('div', 'jp-conductor-empty', 'No storage component in storage-conductor/tracks.md.')
      );
    }
    if (status.problems.length) {
      node.appendChild(this.renderProblems(status.problems));
    }
    if (model.lint?.length || model.lintError) {
      node.appendChild(this.renderLint(model.lint ?? [], model.lintError));
    }
    const list = el('ul', 'jp-conductor-components');
    for (const component of status.components) {
      list.appendChild(this.renderComponent(component));
    }
    node.appendChild(list);
    const plan = model.plan;
    if (plan) {
      node.appendChild(this.renderPlan(plan));
    }
    node.scrollTop = scroll;
  }

  private renderHeader(): HTMLElement {
    const header = el('div', 'jp-conductor-header');
    header.appendChild(el('span', 'jp-conductor-heading', 'Conductor'));
    const refresh = el('button', 'jp-conductor-refresh jp-Button jp-mod-minimal', '⟳');
    refresh.title = 'Refresh now';
    refresh.addEventListener('click', () => void this.model.refresh(true));
    header.appendChild(refresh);
    return header;
  }

  private renderComponent(component: IComponentStatus): HTMLElement {
    const item = el('li', 'jp-conductor-component');
    item.dataset.component = component.id;
    if (component.id === this.model.selected) {
      item.classList.add('jp-mod-selected');
    }
    item.title = `Show the plan of ${component.id}`;
    item.addEventListener('click', event => {
      if (!(event.target as HTMLElement).closest('a')) {
        void this.model.select(component.id);
      }
    });
    const head = el('div', 'jp-conductor-component-head');
    head.appendChild(el('span', 'jp-conductor-component-id', component.id));
    const status = el('span', 'jp-conductor-component-status', component.status ?? '?');
    status.dataset.status = (component.status ?? '').toLowerCase().replace(/\W+/g, '-');
    head.appendChild(status);
    item.appendChild(head);
    if (component.title) {
      item.appendChild(el('div', 'jp-conductor-component-title', component.title));
    }
    item.appendChild(progressBar(component.tasks_done, component.tasks_total));
    const phase = el(
      'div',
      'jp-conductor-component-phase',
      `${component.current_phase ?? 'no open phase'} · ${component.tasks_done}/${component.tasks_total} tasks`
    );
    item.appendChild(phase);
    if (component.next_task) {
      item.appendChild(el('div', 'jp-conductor-component-next', `Next: ${component.next_task}`));
    }
    if (component.problems.length) {
      item.appendChild(this.renderProblems(component.problems));
    }
    return item;
  }

  /** Problems as "file:line message", the location a link to the file at that line. */
  private renderProblems(problems: string[]): HTMLElement {
    const list = el('ul', 'jp-conductor-problems');
    for (const problem of problems) {
      const match = /^(.+?):(\d+): (.*)$/s.exec(problem);
      list.appendChild(
        match
          ? this.renderProblem(match[1], Number(match[2]), match[3])
          : el('li', 'jp-conductor-problem', problem)
      );
    }
    return list;
  }

  /** `conductor lint`'s findings, shown as the status's problems are. */
  private renderLint(findings: ILintProblem[], error: string | null): HTMLElement {
    const list = el('ul', 'jp-conductor-problems jp-conductor-lint');
    list.appendChild(
      el(
        'li',
        'jp-conductor-lint-head',
        error ? `Lint could not run: ${this.shorten(error)}` : `Lint: ${findings.length} finding(s)`
      )
    );
    for (const finding of findings) {
      const message = `${finding.severity}: ${finding.message}`;
      const item = finding.file
        ? this.renderProblem(finding.file, finding.line, message)
        : el('li', 'jp-conductor-problem', message);
      item.dataset.code = finding.code;
      item.dataset.severity = finding.severity;
      list.appendChild(item);
    }
    return list;
  }

  /** One problem: its location (relative to the server root) a link opening the file there. */
  private renderProblem(file: string, line: number | null, message: string): HTMLElement {
    const item = el('li', 'jp-conductor-problem');
    const path = this.relative(file);
    if (!path) {
      item.textContent = `${line ? `${file}:${line}` : file}: ${message}`;
      return item;
    }
    const link = el('a', 'jp-conductor-problem-location', line ? `${path}:${line}` : path);
    link.title = line ? 'Open at this line' : 'Open the file';
    link.addEventListener('click', event => {
      event.stopPropagation();
      this.actions.openFile(path, line ?? undefined);
    });
    item.appendChild(link);
    item.appendChild(document.createTextNode(` ${message}`));
    return item;
  }

  private renderPlan(plan: IPlanResult): HTMLElement {
    const section = el('div', 'jp-conductor-plan');
    section.dataset.component = plan.id;
    const files = this.model.workspace?.files?.[plan.id];
    const head = el('div', 'jp-conductor-plan-head');
    head.appendChild(el('span', 'jp-conductor-plan-title', `Plan of ${plan.id}`));
    const links = el('span', 'jp-conductor-links');
    for (const [key, label] of [
      ['plan', 'plan.md'],
      ['spec', 'spec.md'],
      ['verification', 'verification.json']
    ] as const) {
      const path = files?.[key];
      const link = el('a', `jp-conductor-link jp-conductor-link-${key}`, label);
      if (path) {
        link.title = `Open ${path}`;
        link.addEventListener('click', () => this.actions.openFile(path));
      } else {
        link.classList.add('jp-mod-disabled');
        link.title = 'outside the Jupyter server root: open it from a terminal';
      }
      links.appendChild(link);
    }
    head.appendChild(links);
    section.appendChild(head);
    const current = plan.next?.task?.number ?? null;
    const waiting = plan.next?.phase?.number ?? null;
    for (const phase of plan.plan.phases) {
      section.appendChild(this.renderPhase(plan, phase, current, waiting));
    }
    return section;
  }

  private renderPhase(
    plan: IPlanResult,
    phase: IPhase,
    current: string | null,
    waiting: number | null
  ): HTMLElement {
    const box = el('div', 'jp-conductor-phase');
    box.dataset.phase = String(phase.number);
    const expanded = this.expanded(plan.id, phase);
    box.classList.toggle('jp-mod-collapsed', !expanded);
    box.classList.toggle('jp-mod-locked', phase.locked);
    box.classList.toggle('jp-mod-verified', phase.verified);
    box.classList.toggle('jp-mod-finished', phase.finished);
    box.classList.toggle('jp-mod-current', phase.number === waiting);

    const head = el('div', 'jp-conductor-phase-head');
    const toggle = el('button', 'jp-conductor-toggle jp-Button jp-mod-minimal', expanded ? '▾' : '▸');
    toggle.title = expanded ? 'Collapse' : 'Expand';
    toggle.addEventListener('click', () => {
      this._expanded.set(`${plan.id}:${phase.number}`, !expanded);
      this.render();
    });
    head.appendChild(toggle);
    const title = el('a', 'jp-conductor-phase-title', phase.title);
    title.title = `Open plan.md at line ${phase.line}`;
    title.addEventListener('click', () => this.openPlan(plan.id, phase.line));
    head.appendChild(title);
    const state = phase.verified
      ? 'verified'
      : phase.locked
        ? 'locked'
        : phase.finished
          ? 'waiting for verification'
          : '';
    if (state) {
      head.appendChild(el('span', 'jp-conductor-phase-state', state));
    }
    head.appendChild(
      el('span', 'jp-conductor-phase-count', `${phase.tasks_done}/${phase.tasks_total}`)
    );
    if (phase.finished && !phase.verified) {
      const verify = el('button', 'jp-conductor-verify jp-Button jp-mod-styled jp-mod-accept', 'Verify');
      verify.title = `Open the gate of ${phase.title}`;
      verify.addEventListener('click', () => this.actions.verify(plan.id, phase));
      head.appendChild(verify);
    }
    box.appendChild(head);
    box.appendChild(progressBar(phase.tasks_done, phase.tasks_total));
    if (phase.locked && phase.lock_reason) {
      box.appendChild(el('div', 'jp-conductor-lock-reason', `Locked: ${phase.lock_reason}`));
    }
    if (expanded) {
      const list = el('ul', 'jp-conductor-tasks');
      for (const task of phase.tasks) {
        list.appendChild(this.renderTask(plan.id, phase, task, current));
      }
      box.appendChild(list);
    }
    return box;
  }

  private renderTask(id: string, phase: IPhase, task: ITask, current: string | null): HTMLElement {
    const item = el('li', `jp-conductor-task jp-conductor-state-${task.state}`);
    item.dataset.task = task.number;
    if (task.number === current) {
      item.classList.add('jp-mod-current');
    }
    if (this._selectedTask?.id === id && this._selectedTask.task === task.number) {
      item.classList.add('jp-mod-selected');
    }
    const row = el('div', 'jp-conductor-task-row');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.className = 'jp-conductor-checkbox';
    box.dataset.taskRef = task.number;
    box.checked = task.state === 'done';
    box.indeterminate = task.state === 'in_progress';
    box.disabled = phase.locked;
    box.title = phase.locked
      ? `locked: ${phase.lock_reason ?? 'the phase is locked'}`
      : `${MARK[task.state]} ${STATE_TITLE[task.state]}: click to mark it ${task.state === 'done' ? 'not done' : 'done'}`;
    box.addEventListener('change', () => {
      const action: TaskAction = task.state === 'done' ? 'undo' : 'done';
      void this.mark(id, task.number, action, task.state, box);
    });
    row.appendChild(box);
    if (task.state !== 'todo' && task.state !== 'done') {
      const mark = el('span', 'jp-conductor-mark', MARK[task.state]);
      mark.title = STATE_TITLE[task.state];
      row.appendChild(mark);
    }
    const ref = { id, task: task.number, name: task.name, line: task.line };
    const name = el('a', 'jp-conductor-task-name', `${task.number} ${task.name}`);
    name.title = `Open plan.md at line ${task.line}`;
    name.addEventListener('click', () => {
      this.select(ref);
      this.openPlan(id, task.line);
    });
    row.appendChild(name);
    if (task.sha) {
      const sha = el('code', 'jp-conductor-sha', task.sha.slice(0, 7));
      sha.title = `commit ${task.sha}`;
      row.appendChild(sha);
    }
    // The context menu's commands act on the task under the pointer.
    row.addEventListener('contextmenu', () => this.select(ref));
    item.appendChild(row);
    if (task.subtasks.length) {
      const list = el('ul', 'jp-conductor-subtasks');
      for (const sub of task.subtasks) {
        list.appendChild(this.renderTask(id, phase, sub, current));
      }
      item.appendChild(list);
    }
    return item;
  }

  private select(ref: ITaskRef): void {
    this._selectedTask = ref;
    for (const node of Array.from(this.node.querySelectorAll('.jp-conductor-task.jp-mod-selected'))) {
      node.classList.remove('jp-mod-selected');
    }
    const row = this.node.querySelector(`.jp-conductor-task[data-task="${CSS.escape(ref.task)}"]`);
    row?.classList.add('jp-mod-selected');
  }

  private openPlan(id: string, line: number): void {
    const path = this.model.workspace?.files?.[id]?.plan;
    if (path) {
      this.actions.openFile(path, line);
    } else {
      Notification.warning(
        `${id}: plan.md is outside the Jupyter server's root folder; open it from a terminal`,
        { autoClose: 5000 }
      );
    }
  }

  /** Open by default: the phases not yet verified; the user's toggles win. */
  private expanded(id: string, phase: IPhase): boolean {
    return this._expanded.get(`${id}:${phase.number}`) ?? !phase.verified;
  }

  /** A message with the workspace's absolute server path written relative to the root. */
  private shorten(message: string): string {
    const workspace = this.model.workspace;
    if (!workspace?.workspace || !workspace.path) {
      return message;
    }
    return message.split(workspace.path.replace(/\/+$/, '')).join(workspace.workspace);
  }

  /** A server path made relative to the server root when it is inside the workspace. */
  private relative(path: string): string | null {
    const workspace = this.model.workspace;
    if (!workspace?.workspace || !workspace.path) {
      return null;
    }
    const base = workspace.path.replace(/\/+$/, '');
    if (path === base || path.startsWith(base + '/')) {
      return (workspace.workspace + path.slice(base.length)).replace(/^\/+/, '');
    }
    return null;
  }

  private _visibilityChanged = new Signal<this, boolean>(this);
  private _expanded = new Map<string, boolean>();
  private _selectedTask: ITaskRef | null = null;
  private _pending = 0;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function progressBar(done: number, total: number): HTMLElement {
  const bar = el('div', 'jp-conductor-progress');
  const fill = el('div', 'jp-conductor-progress-fill');
  const share = total > 0 ? Math.round((100 * done) / total) : 0;
  fill.style.width = `${share}%`;
  bar.appendChild(fill);
  bar.title = `${done}/${total} (${share}%)`;
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-valuenow', String(share));
  return bar;
}
