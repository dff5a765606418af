// Whether the import dialog is open: set by the Export menu's "Import…" (in the top bar, or in the
// phone's Room menu, which closes), read by the top bar, which stays while the layout changes.
export const importUi = $state({ open: false });
