/**
 * `conductor-magics:statusbar`: the `conductor-status` item (`orders_db · Phase 3 ·
 * 12/38`); shown unless the setting showStatusBar is off, and a click opens the panel.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Signal } from '@lumino/signaling';

import { ConductorStatus } from './statusbar';
import { CommandIDs, IConductor, PluginIDs } from './tokens';

export const statusbarPlugin: JupyterFrontEndPlugin<void> = {
  id: PluginIDs.statusbar,
  description: "The Conductor status bar item: the selected component's phase and progress.",
  autoStart: true,
  requires: [IConductor, IStatusBar],
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    conductor: IConductor,
    statusBar: IStatusBar,
    settingRegistry: ISettingRegistry | null
  ) => {
    const { commands } = app;
    let showStatusBar = true;
    const activeStateChanged = new Signal<unknown, void>({});

    const item = new ConductorStatus(conductor.model, () => {
      if (commands.hasCommand(CommandIDs.openPanel)) {
        void commands.execute(CommandIDs.openPanel);
      }
    });
    statusBar.registerStatusItem(PluginIDs.statusbar + ':status', {
      item,
      align: 'left',
      rank: 50,
      isActive: () => showStatusBar,
      activeStateChanged
    });
    // A shown item keeps a slow poll going, so that it stays true with the panel closed.
    conductor.polling.add(() => (showStatusBar ? 'slow' : 'paused'));

    if (settingRegistry) {
      void settingRegistry
        .load(PluginIDs.statusbar)
        .then(settings => {
          const apply = () => {
            showStatusBar = settings.get('showStatusBar').composite !== false;
            activeStateChanged.emit();
            conductor.polling.update();
          };
          settings.changed.connect(apply);
          apply();
        })
        .catch(error => console.error('conductor-magics: cannot load the status bar settings', error));
    }
  }
};
