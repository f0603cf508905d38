/**
 * Workspace files in JupyterLab's editors: open one at a line, and keep an open
 * plan.md true to the file on disk. An editor without unsaved edits reloads when the
 * file changed (a tick from the panel, a kernel or a terminal); one with unsaved edits
 * gets a warning instead, so neither side is overwritten silently.
 */

import { Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDocumentWidget } from '@jupyterlab/docregistry';
import { FileEditor, IEditorTracker } from '@jupyterlab/fileeditor';
import { Contents } from '@jupyterlab/services';

import { messageOf } from './model';

export class WorkspaceDocuments {
  constructor(
    private docManager: IDocumentManager,
    private contents: Contents.IManager,
    private editors: IEditorTracker | null
  ) {}

  /** Open `path` (relative to the server root) in the text editor, at a 1-based line. */
  async open(path: string, line?: number): Promise<void> {
    try {
      await this.contents.get(path, { content: false });
    } catch {
      Notification.info(`${path} does not exist yet`, { autoClose: 5000 });
      return;
    }
    const widget = this.docManager.openOrReveal(path, 'Editor') as
      | IDocumentWidget<FileEditor>
      | undefined;
    if (!widget) {
      return;
    }
    await widget.context.ready;
    if (line && line > 0) {
      const editor = widget.content.editor;
      const position = { line: Math.min(line - 1, editor.lineCount - 1), column: 0 };
      editor.setCursorPosition(position);
      editor.revealPosition(position);
      editor.focus();
    }
  }

  /** Whether one of `paths` is open in a text editor. */
  isOpen(paths: string[]): boolean {
    return !!this.editors?.find(widget => paths.includes(widget.context.path));
  }

  /**
   * For every open editor of one of `paths`: reload it when the file on disk is newer
   * and it has no unsaved edits; warn (once per change) when it has some.
   */
  async sync(paths: string[]): Promise<void> {
    const widgets: IDocumentWidget<FileEditor>[] = [];
    this.editors?.forEach(widget => {
      if (paths.includes(widget.context.path)) {
        widgets.push(widget);
      }
    });
    for (const widget of widgets) {
      const context = widget.context;
      if (!context.isReady || context.isDisposed) {
        continue;
      }
      let onDisk: Contents.IModel;
      try {
        onDisk = await this.contents.get(context.path, { content: false });
      } catch {
        continue; // gone or unreadable: the status's problems say so
      }
      const known = context.contentsModel?.last_modified;
      if (!known || !newer(onDisk.last_modified, known)) {
        continue;
      }
      if (!context.model.dirty) {
        try {
          await context.revert();
        } catch (error) {
          Notification.error(`${context.path} could not be reloaded: ${messageOf(error)}`);
        }
        continue;
      }
      const key = `${context.path}@${onDisk.last_modified}`;
      if (this._warned.has(key)) {
        continue;
      }
      this._warned.add(key);
      Notification.warning(
        `${context.path} changed on disk, and its editor has unsaved edits: ` +
          'reload it (your edits are lost) or save it (the other change is overwritten).',
        {
          autoClose: false,
          actions: [
            {
              label: 'Reload from disk',
              callback: () => void context.revert()
            }
          ]
        }
      );
    }
  }

  private _warned = new Set<string>();
}

function newer(a: string, b: string): boolean {
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isFinite(ta) && Number.isFinite(tb) && ta !== tb) {
    return ta > tb;
  }
  // Same millisecond (or unparsable): the ISO strings carry microseconds and sort.
  return a > b;
}
