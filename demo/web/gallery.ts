import { renderMessage, renderThread } from './block-kit.js';
import { GALLERY_GLOBAL, type Gallery, type GalleryGroup } from './gallery-api.js';

/** Entry of the gallery page: see gallery-api.ts. */

const actions: Gallery['actions'] = [];

function show(groups: readonly GalleryGroup[], users: Readonly<Record<string, string>> = {}): void {
  actions.length = 0;
  const options = {
    onAction: (action: Gallery['actions'][number]) => {
      actions.push(action);
    },
    userName: (id: string) => (Object.hasOwn(users, id) ? users[id] : undefined),
  };
  const root = document.createElement('main');
  root.className = 'sk-gallery';
  for (const group of groups) {
    const [parent, ...replies] = group.messages;
    if (parent === undefined) continue;
    const section = document.createElement('section');
    section.className = 'sk-gallery-group';
    section.dataset.group = group.name;
    const title = document.createElement('h1');
    title.className = 'sk-gallery-title';
    title.textContent = group.name;
    section.append(
      title,
      replies.length === 0 ? renderMessage(parent, options) : renderThread(parent, replies, options),
    );
    root.append(section);
  }
  document.body.replaceChildren(root);
}

const gallery: Gallery = { show, actions };
Object.assign(globalThis, { [GALLERY_GLOBAL]: gallery });
