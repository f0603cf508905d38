/**
 * The phase gate as a JupyterLab dialog: the automated checks with their status and
 * seconds, a failed check waivable only with a written reason, a note, and Confirm,
 * which records the verdict exactly as `conductor verify --confirm` does (the server
 * runs that very command).
 *
 * Confirm stays disabled while the checks run, while a failed check is neither fixed
 * nor waived with a reason, and while the note is empty: JupyterLab's Dialog refuses
 * to accept while its body holds an `:invalid` input or a `.jp-mod-error` element.
 */

import { Dialog, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ConductorApi, ICheck, IGateResult, IPhase } from './api';
import { messageOf } from './model';

/** What the dialog hands back on Confirm. */
export interface IGateValue {
  note: string;
  waive: Record<string, string>;
}

const FAILED = new Set(['fail', 'failed', 'error']);

/** The dialog's body: the checks table, the waivers and the note. */
export class GateBody extends Widget {
  constructor(phase: IPhase) {
    super();
    this.addClass('jp-conductor-gate');
    const summary = document.createElement('p');
    summary.className = 'jp-conductor-gate-summary';
    summary.textContent =
      `${phase.tasks_done}/${phase.tasks_total} tasks done` +
      (phase.finished ? '' : ' (the phase is not finished: the gate will refuse)');
    this.node.appendChild(summary);

    this._checks = document.createElement('div');
    this._checks.className = 'jp-conductor-gate-checks jp-mod-error';
    this._checks.textContent = 'Running the automated checks…';
    this.node.appendChild(this._checks);

    const label = document.createElement('label');
    label.className = 'jp-conductor-gate-note';
    label.textContent = 'Verification note';
    this._note = document.createElement('textarea');
    this._note.required = true;
    this._note.rows = 3;
    this._note.placeholder = 'What did you check by hand? (recorded in verification.json)';
    label.appendChild(this._note);
    this.node.appendChild(label);
  }

  /** Show the checks the server ran; failed ones get a waiver box and a reason field. */
  setChecks(checks: ICheck[] | null): void {
    const node = this._checks;
    node.textContent = '';
    node.classList.remove('jp-mod-error');
    this._waivers.clear();
    if (!checks || checks.length === 0) {
      node.textContent = 'No automated checks for this phase.';
      this.revalidate();
      return;
    }
    const table = document.createElement('table');
    for (const check of checks) {
      const row = table.insertRow();
      row.className = 'jp-conductor-check';
      row.dataset.check = check.check;
      row.dataset.status = check.status;
      const name = row.insertCell();
      name.className = 'jp-conductor-check-name';
      name.textContent = check.check;
      if (check.detail) {
        name.title = check.detail;
        const detail = document.createElement('div');
        detail.className = 'jp-conductor-check-detail';
        detail.textContent = check.detail;
        name.appendChild(detail);
      }
      const status = row.insertCell();
      status.className = `jp-conductor-check-status jp-conductor-check-${check.status}`;
      status.textContent = check.status;
      const seconds = row.insertCell();
      seconds.className = 'jp-conductor-check-seconds';
      seconds.textContent = check.seconds === null ? '' : `${check.seconds.toFixed(2)} s`;
      const waiver = row.insertCell();
      if (FAILED.has(check.status)) {
        this.addWaiver(row, waiver, check.check);
      }
    }
    node.appendChild(table);
    this.revalidate();
  }

  /** The checks could not run: say why; Confirm stays disabled. */
  setError(message: string): void {
    this._checks.textContent = `The checks could not run: ${message}`;
    this._checks.classList.add('jp-mod-error', 'jp-conductor-gate-error');
    this.revalidate();
  }

  getValue(): IGateValue {
    const waive: Record<string, string> = {};
    for (const [check, { box, reason }] of this._waivers) {
      if (box.checked) {
        waive[check] = reason.value.trim();
      }
    }
    return { note: this._note.value.trim(), waive };
  }

  protected onAfterAttach(): void {
    this.revalidate();
  }

  private addWaiver(row: HTMLTableRowElement, cell: HTMLTableCellElement, check: string): void {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.className = 'jp-conductor-waive';
    const label = document.createElement('label');
    label.appendChild(box);
    label.appendChild(document.createTextNode(' waive'));
    const reason = document.createElement('input');
    reason.type = 'text';
    reason.className = 'jp-conductor-waive-reason';
    reason.placeholder = 'why the failure is acceptable';
    const sync = () => {
      // An unwaived failure blocks Confirm; a waiver needs its written reason.
      row.classList.toggle('jp-mod-error', !box.checked);
      reason.hidden = !box.checked;
      reason.required = box.checked;
      reason.pattern = box.checked ? '.*\\S.*' : '';
    };
    box.addEventListener('change', () => {
      sync();
      this.revalidate();
      if (box.checked) {
        reason.focus();
      }
    });
    sync();
    cell.appendChild(label);
    cell.appendChild(reason);
    this._waivers.set(check, { box, reason });
  }

  /** Make the dialog check its inputs again (it does so on `input` events). */
  private revalidate(): void {
    this.node.dispatchEvent(new Event('input', { bubbles: true }));
  }

  private _checks: HTMLDivElement;
  private _note: HTMLTextAreaElement;
  private _waivers = new Map<string, { box: HTMLInputElement; reason: HTMLInputElement }>();
}

/**
 * Open the gate of `phase`: run its checks, and on Confirm record the verdict.
 * Resolves with the gate result when a verdict was recorded, else null.
 */
export async function openGate(
  api: ConductorApi,
  id: string,
  phase: IPhase
): Promise<IGateResult | null> {
  const body = new GateBody(phase);
  const dialog = new Dialog<IGateValue>({
    title: `Verify ${phase.title}`,
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Confirm' })],
    focusNodeSelector: 'textarea'
  });
  dialog.addClass('jp-conductor-gate-dialog');
  api
    .verify(id, { phase: phase.number, run_checks: true })
    .then(result => body.setChecks(result.checks))
    .catch(error => body.setError(messageOf(error)));
  const answer = await dialog.launch();
  if (!answer.button.accept || !answer.value) {
    return null;
  }
  const { note, waive } = answer.value;
  try {
    const result = await api.verify(id, {
      phase: phase.number,
      run_checks: true,
      waive,
      confirm: note
    });
    if (result.verified) {
      Notification.success(`${id}: ${phase.title} verified`, { autoClose: 5000 });
    }
    return result;
  } catch (error) {
    Notification.error(`${id}: ${phase.title} was not verified: ${messageOf(error)}`, {
      autoClose: false
    });
    return null;
  }
}
