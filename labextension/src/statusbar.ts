/**
 * The status bar item (`conductor-status`): `orders_db · Phase 3 · 12/38` for the
 * component the panel shows; a click opens the panel.
 */

import { Widget } from '@lumino/widgets';

import { IComponentStatus } from './api';
import { ConductorModel } from './model';

export const STATUS_ID = 'conductor-status';

/** `orders_db · Phase 3 · 12/38`, or null when there is nothing to say. */
export function statusText(component: IComponentStatus | null): string | null {
  if (!component) {
    return null;
  }
  const phase = /^Phase\s+(\d+)/i.exec(component.current_phase ?? '');
  const parts = [component.id];
  if (phase) {
    parts.push(`Phase ${phase[1]}`);
  }
  parts.push(`${component.tasks_done}/${component.tasks_total}`);
  return parts.join(' · ');
}

export class ConductorStatus extends Widget {
  constructor(private model: ConductorModel, onClick: () => void) {
    super();
    this.id = STATUS_ID;
    this.addClass('jp-conductor-status');
    this.node.addEventListener('click', onClick);
    model.changed.connect(this.refresh, this);
    this.refresh();
  }

  /** Show the model's selected component. */
  refresh(): void {
    const component = this.model.component;
    const text = statusText(component);
    this.node.textContent = text ?? 'Conductor';
    this.node.title = component
      ? `${component.title ?? component.id}: ${component.status ?? ''}` +
        (component.next_task ? ` — next: ${component.next_task}` : '') +
        ' (click to open the Conductor panel)'
      : 'Open the Conductor panel';
  }
}
