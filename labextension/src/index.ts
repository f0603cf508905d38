/**
 * conductor-magics for JupyterLab: the Conductor side panel, its status bar item and
 * its commands, over the REST routes of the conductor_magics server extension.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Signal } from '@lumino/signaling';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { ConductorApi, TaskAction } from './api';
import { WorkspaceDocuments } from './documents';
import { openGate } from './gate';
import { conductorIcon } from './icon';
import { ConductorModel } from './model';
import { ConductorPanel, findTask, ITaskRef, PANEL_ID } from './panel';
import { ConductorStatus } from './statusbar';

const PLUGIN_ID = 'conductor-magics:plugin';

export namespace CommandIDs {
  export const openPanel = 'conductor:open-panel';
  export const refresh = 'conductor:refresh';
  export const insertTaskCell = 'conductor:insert-task-cell';
  export const openPlan = 'conductor:open-plan';
  export const markTask = 'conductor:mark-task';
}

const ACTION_LABEL: Record<TaskAction, string> = {
  done: 'Mark Task Done [x]',
  undo: 'Mark Task Not Done [ ]',
  start: 'Mark Task In Progress [~]',
  skip: 'Mark Task Skipped [-]',
  block: 'Mark Task Blocked [!]'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Conductor side panel: a live view of the storage components and their plans.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [
    ICommandPalette,
    ISettingRegistry,
    IStatusBar,
    INotebookTracker,
    IEditorTracker,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    notebooks: INotebookTracker | null,
    editors: IEditorTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    const api = new ConductorApi(app.serviceManager.serverSettings);
    const model = new ConductorModel(api);
    const documents = new WorkspaceDocuments(docManager, app.serviceManager.contents, editors);
    let showStatusBar = true;
    const statusBarChanged = new Signal<unknown, void>({});

    const panel = new ConductorPanel(model, {
      openFile: (path, line) => void documents.open(path, line),
      verify: (id, phase) => {
        void openGate(api, id, phase).then(() => model.refresh(true));
      }
    });
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, PANEL_ID);

    const planPaths = (): string[] =>
      Object.values(model.workspace?.files ?? {})
        .map(files => files.plan)
        .filter((path): path is string => !!path);

    // Poll fast while someone looks (the panel, or an open plan.md), slowly for the
    // status bar alone, and not at all otherwise.
    const updateMode = () => {
      const watching = panel.isVisible || documents.isOpen(planPaths());
      model.setMode(watching ? 'fast' : showStatusBar ? 'slow' : 'paused');
    };
    panel.visibilityChanged.connect(updateMode);
    editors?.widgetAdded.connect(updateMode);
    editors?.currentChanged.connect(updateMode);
    model.changed.connect(updateMode);
    model.filesChanged.connect(() => void documents.sync(planPaths()));

    /** The task a command acts on: its arguments, else the selected one, else the next. */
    const taskOf = (args: ReadonlyPartialJSONObject): ITaskRef | null => {
      const id = (args.id as string) ?? panel.selectedTask?.id ?? model.selected;
      const number = args.task as string | undefined;
      if (number && id) {
        const task = model.plan && model.plan.id === id ? findTask(model.plan, number) : null;
        return { id, task: number, name: task?.name ?? '', line: task?.line ?? 0 };
      }
      return panel.selectedTask ?? panel.nextTask;
    };

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
    commands.addCommand(CommandIDs.insertTaskCell, {
      label: args => {
        const ref = taskOf(args);
        return ref ? `Insert a Task Cell for ${ref.task}` : 'Insert a Conductor Task Cell';
      },
      caption: 'Insert `%%conductor task <id> <task>` below the active cell of the current notebook',
      isEnabled: args => !!notebooks?.currentWidget && !!taskOf(args),
      execute: args => {
        const ref = taskOf(args);
        const notebook = notebooks?.currentWidget;
        if (!ref || !notebook) {
          Notification.warning('Open a notebook and select a task in the Conductor panel first', {
            autoClose: 5000
          });
          return;
        }
        NotebookActions.insertBelow(notebook.content);
        const cell = notebook.content.activeCell;
        if (cell) {
          const comment = ref.name ? `# ${ref.task} ${ref.name}\n` : '';
          cell.model.sharedModel.setSource(`%%conductor task ${ref.id} ${ref.task}\n${comment}`);
        }
        app.shell.activateById(notebook.id);
      }
    });
    commands.addCommand(CommandIDs.openPlan, {
      label: args => {
        const ref = taskOf(args);
        return ref && ref.line ? `Open plan.md at ${ref.task}` : 'Open plan.md';
      },
      caption: "Open the selected component's plan.md in the editor",
      isEnabled: () => planPaths().length > 0,
      execute: args => {
        const ref = taskOf(args);
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
        const ref = taskOf(args);
        return !!ref && !!model.plan && !!findTask(model.plan, ref.task);
      },
      execute: args => {
        const ref = taskOf(args);
        const task = ref && model.plan ? findTask(model.plan, ref.task) : null;
        if (!ref || !task) {
          return;
        }
        return panel.mark(ref.id, ref.task, (args.action as TaskAction) ?? 'done', task.state);
      }
    });

    const category = 'Conductor';
    for (const command of [
      CommandIDs.openPanel,
      CommandIDs.refresh,
      CommandIDs.insertTaskCell,
      CommandIDs.openPlan
    ]) {
      palette?.addItem({ command, category });
    }
    const taskSelector = '.jp-conductor-panel .jp-conductor-task-row';
    app.contextMenu.addItem({ command: CommandIDs.openPlan, selector: taskSelector, rank: 1 });
    app.contextMenu.addItem({ command: CommandIDs.insertTaskCell, selector: taskSelector, rank: 2 });
    (['start', 'skip', 'block', 'undo'] as TaskAction[]).forEach((action, index) =>
      app.contextMenu.addItem({
        command: CommandIDs.markTask,
        args: { action },
        selector: taskSelector,
        rank: 10 + index
      })
    );
    app.contextMenu.addItem({ command: CommandIDs.refresh, selector: '.jp-conductor-panel', rank: 20 });

    if (statusBar) {
      const item = new ConductorStatus(model, () => {
        void commands.execute(CommandIDs.openPanel);
      });
      statusBar.registerStatusItem(PLUGIN_ID + ':status', {
        item,
        align: 'left',
        rank: 50,
        isActive: () => showStatusBar,
        activeStateChanged: statusBarChanged
      });
    }

    if (settingRegistry) {
      void settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            model.interval = Number(settings.get('refreshInterval').composite) || 2;
            showStatusBar = settings.get('showStatusBar').composite !== false;
            statusBarChanged.emit();
            updateMode();
          };
          settings.changed.connect(apply);
          apply();
        })
        .catch(error => console.error('conductor-magics: cannot load the settings', error));
    }

    void app.restored.then(() => {
      updateMode();
      void model.refresh(true);
    });
  }
};

export default plugin;
