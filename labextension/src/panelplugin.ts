/**
 * `conductor-magics:panel`: the Conductor side panel and the commands that act on its
 * tasks (open the panel, refresh, open plan.md, mark a task) with its context menu.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';

import { TaskAction } from './api';
import { openGate } from './gate';
import { conductorIcon } from './icon';
import { findTask } from './model';
import { ConductorPanel, PANEL_ID, TASK_SELECTOR } from './panel';
import { CommandIDs, IConductor, PluginIDs } from './tokens';

const ACTION_LABEL: Record<TaskAction, string> = {
  done: 'Mark Task Done [x]',
  undo: 'Mark Task Not Done [ ]',
  start: 'Mark Task In Progress [~]',
  skip: 'Mark Task Skipped [-]',
  block: 'Mark Task Blocked [!]'
};

export const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: PluginIDs.panel,
  description: 'The Conductor side panel: a live view of the storage components and their plans.',
  autoStart: true,
  requires: [IConductor],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    conductor: IConductor,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const { api, model, documents, polling } = conductor;

    const panel = new ConductorPanel(model, {
      openFile: (path, line) => void documents.open(path, line),
      verify: (id, phase) => {
        void openGate(api, id, phase).then(() => model.refresh(true));
      }
    });
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, PANEL_ID);
    conductor.setTaskPicker(panel);

    // The visible panel polls fast; hidden, it asks for nothing.
    polling.add(() => (panel.isVisible ? 'fast' : 'paused'));
    panel.visibilityChanged.connect(() => polling.update());

    const { commands } = app;
    commands.addCommand(CommandIDs.openPanel, {
      label: 'Open the Conductor Panel',
      caption: 'Show the storage components and their plans',
      icon: conductorIcon,
      execute: () => {
        app.shell.activateById(PANEL_ID);
      }
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the Conductor Panel',
      execute: () => model.refresh(true)
    });
    commands.addCommand(CommandIDs.openPlan, {
      label: args => {
        const ref = conductor.taskOf(args);
        return ref && ref.line ? `Open plan.md at ${ref.task}` : 'Open plan.md';
      },
      caption: "Open the selected component's plan.md in the editor",
      isEnabled: () => conductor.planPaths().length > 0,
      execute: args => {
        const ref = conductor.taskOf(args);
        const id = ref?.id ?? model.selected;
        const path = id ? model.workspace?.files?.[id]?.plan : null;
        if (!path) {
          Notification.warning('No plan.md inside the Jupyter server root folder', {
            autoClose: 5000
          });
          return;
        }
        const line = typeof args.line === 'number' ? args.line : ref?.line;
        return documents.open(path, line || undefined);
      }
    });
    commands.addCommand(CommandIDs.markTask, {
      label: args => ACTION_LABEL[(args.action as TaskAction) ?? 'done'] ?? 'Mark Task',
      isEnabled: args => {
        const ref = conductor.taskOf(args);
        return !!ref && !!model.plan && !!findTask(model.plan, ref.task);
      },
      execute: args => {
        const ref = conductor.taskOf(args);
        const task = ref && model.plan ? findTask(model.plan, ref.task) : null;
        if (!ref || !task) {
          return;
        }
        return panel.mark(ref.id, ref.task, (args.action as TaskAction) ?? 'done', task.state);
      }
    });

    const category = 'Conductor';
    for (const command of [CommandIDs.openPanel, CommandIDs.refresh, CommandIDs.openPlan]) {
      palette?.addItem({ command, category });
    }
    app.contextMenu.addItem({ command: CommandIDs.openPlan, selector: TASK_SELECTOR, rank: 1 });
    (['start', 'skip', 'block', 'undo'] as TaskAction[]).forEach((action, index) =>
      app.contextMenu.addItem({
        command: CommandIDs.markTask,
        args: { action },
        selector: TASK_SELECTOR,
        rank: 10 + index
      })
    );
    app.contextMenu.addItem({ command: CommandIDs.refresh, selector: '.jp-conductor-panel', rank: 20 });
  }
};
