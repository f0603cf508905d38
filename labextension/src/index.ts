import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'conductor-magics:plugin',
  description: 'Conductor side panel.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    console.log('conductor-magics lab extension activated');
  }
};

export default plugin;
