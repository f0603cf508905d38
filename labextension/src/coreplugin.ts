/**
 * `conductor-magics:core`: the REST client, the model and its poll, the workspace
 * documents; provides them to the other plugins as `IConductor`.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IEditorTracker } from '@jupyterlab/fileeditor';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { ConductorApi } from './api';
import { WorkspaceDocuments } from './documents';
import { ConductorModel, findTask, ITaskRef, PollMode } from './model';
import { IConductor, IPollingControl, ITaskPicker, PluginIDs } from './tokens';

const SPEED: Record<PollMode, number> = { paused: 0, slow: 1, fast: 2 };

/** The fastest mode any watcher asks for; paused without watchers. */
class PollingControl implements IPollingControl {
  constructor(private model: ConductorModel) {}

  get mode(): PollMode {
    let mode: PollMode = 'paused';
    for (const watcher of this._watchers) {
      const asked = watcher();
      if (SPEED[asked] > SPEED[mode]) {
        mode = asked;
      }
    }
    return mode;
  }

  add(mode: () => PollMode): IDisposable {
    this._watchers.add(mode);
    return new DisposableDelegate(() => {
      this._watchers.delete(mode);
      this.update();
    });
  }

  update(): void {
    this.model.setMode(this.mode);
  }

  private _watchers = new Set<() => PollMode>();
}

class Conductor implements IConductor {
  constructor(
    readonly api: ConductorApi,
    readonly model: ConductorModel,
    readonly documents: WorkspaceDocuments
  ) {
    this.polling = new PollingControl(model);
  }

  readonly polling: PollingControl;

  planPaths(): string[] {
    return Object.values(this.model.workspace?.files ?? {})
      .map(files => files.plan)
      .filter((path): path is string => !!path);
  }

  setTaskPicker(picker: ITaskPicker): IDisposable {
    this._picker = picker;
    return new DisposableDelegate(() => {
      if (this._picker === picker) {
        this._picker = null;
      }
    });
  }

  taskOf(args: ReadonlyPartialJSONObject): ITaskRef | null {
    const model = this.model;
    const picker = this._picker;
    const id = (args.id as string) ?? picker?.selectedTask?.id ?? model.selected;
    const number = args.task as string | undefined;
    if (number && id) {
      const task = model.plan && model.plan.id === id ? findTask(model.plan, number) : null;
      return { id, task: number, name: task?.name ?? '', line: task?.line ?? 0 };
    }
    return picker ? picker.selectedTask ?? picker.nextTask : null;
  }

  private _picker: ITaskPicker | null = null;
}

export const corePlugin: JupyterFrontEndPlugin<IConductor> = {
  id: PluginIDs.core,
  description: 'The Conductor REST client, the workspace model and its poll.',
  autoStart: true,
  provides: IConductor,
  requires: [IDocumentManager],
  optional: [ISettingRegistry, IEditorTracker],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    settingRegistry: ISettingRegistry | null,
    editors: IEditorTracker | null
  ): IConductor => {
    const api = new ConductorApi(app.serviceManager.serverSettings);
    const model = new ConductorModel(api);
    const documents = new WorkspaceDocuments(docManager, app.serviceManager.contents, editors);
    const conductor = new Conductor(api, model, documents);
    const { polling } = conductor;

    // An open plan.md is someone looking: poll fast so its editor follows the disk.
    polling.add(() => (documents.isOpen(conductor.planPaths()) ? 'fast' : 'paused'));
    const update = () => polling.update();
    editors?.widgetAdded.connect(update);
    editors?.currentChanged.connect(update);
    model.changed.connect(update);
    model.filesChanged.connect(() => void documents.sync(conductor.planPaths()));

    if (settingRegistry) {
      void settingRegistry
        .load(PluginIDs.core)
        .then(settings => {
          const apply = () => {
            model.interval = Number(settings.get('refreshInterval').composite) || 2;
          };
          settings.changed.connect(apply);
          apply();
        })
        .catch(error => console.error('conductor-magics: cannot load the core settings', error));
    }

    void app.restored.then(() => {
      update();
      void model.refresh(true);
    });
    return conductor;
  }
};
