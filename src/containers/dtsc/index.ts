// DTSC container (reference/mistserver.md §2): DTMI values, frames, stream headers.
export * from './dtmi.js';
export * from './packets.js';
export * from './header.js';
