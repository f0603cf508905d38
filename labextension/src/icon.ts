/** The Conductor icon: a baton over three staff lines (an SVG LabIcon, themed). */

import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="15" width="20" height="1.6" rx="0.8"/>
    <rect x="2" y="18.5" width="20" height="1.6" rx="0.8"/>
    <rect x="2" y="22" width="20" height="1.6" rx="0.8" opacity="0.6"/>
    <path d="M4.2 12.6 19.6 2.1a1.1 1.1 0 0 1 1.3 1.8L5.6 14.2a1 1 0 0 1-1.4-1.6z"/>
    <circle cx="5" cy="13.4" r="2.2"/>
  </g>
</svg>`;

export const conductorIcon = new LabIcon({ name: 'conductor-magics:conductor', svgstr: SVG });
