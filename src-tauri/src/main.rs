// No console window on Windows release builds; a no-op elsewhere.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Before any thread starts: see `capture_local_offset`.
    stagepass_tray::clock::capture_local_offset();
    stagepass_tray::run()
}
