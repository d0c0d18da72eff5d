/*
 * pages/files.js: file pages. For now one: a file upload on its own page; the submission forms
 * embed the same widget (upload.js).
 */

import { uploadWidget } from '../upload.js';
import { h, pageHeader } from '../dom.js';

export function renderUpload() {
  return h('section', { class: 'panel' },
    pageHeader('Upload a file', 'Upload a manuscript: it stays private to you until you attach it to a submission.'),
    uploadWidget({ kind: 'manuscript', label: 'Manuscript file' }));
}
