/**
 * `conductor-magics:notebook`: `conductor:insert-task-cell` puts
 * `%%conductor task <id> <task>` below the active cell of the current notebook.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { TASK_SELECTOR } from './panel';
import { CommandIDs, IConductor, PluginIDs } from './tokens';

export const notebookPlugin: JupyterFrontEndPlugin<void> = {
  id: PluginIDs.notebook,
  description: 'Insert a `%%conductor task` cell for a task of the Conductor panel.',
  autoStart: true,
  requires: [IConductor, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    conductor: IConductor,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    app.commands.addCommand(CommandIDs.insertTaskCell, {
      label: args => {
        const ref = conductor.taskOf(args);
        return ref ? `Insert a Task Cell for ${ref.task}` : 'Insert a Conductor Task Cell';
      },
      caption: 'Insert `%%conductor task <id> <task>` below the active cell of the current notebook',
      isEnabled: args => !!notebooks.currentWidget && !!conductor.taskOf(args),
      execute: args => {
        const ref = conductor.taskOf(args);
        const notebook = notebooks.currentWidget;
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
    palette?.addItem({ command: CommandIDs.insertTaskCell, category: 'Conductor' });
    app.contextMenu.addItem({
      command: CommandIDs.insertTaskCell,
      selector: TASK_SELECTOR,
      rank: 2
    });
  }
};
