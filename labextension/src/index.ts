/**
 * conductor-magics for JupyterLab, one plugin per concern over the REST routes of the
 * conductor_magics server extension: core (client, model, poll; provides IConductor),
 * panel (side panel and its commands), notebook (task cells), statusbar.
 */

import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { corePlugin } from './coreplugin';
import { notebookPlugin } from './notebookplugin';
import { panelPlugin } from './panelplugin';
import { statusbarPlugin } from './statusbarplugin';

export { CommandIDs, IConductor, IPollingControl, ITaskPicker, PluginIDs } from './tokens';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  panelPlugin,
  notebookPlugin,
  statusbarPlugin
];

export default plugins;
