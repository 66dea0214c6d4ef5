// Stand-ins for gpucolo_<name>.so in the plugin-probe test: one with the entry point, one
// (GPUCOLO_FAKE_PLUGIN_NO_ENTRY) without it.
#ifndef GPUCOLO_FAKE_PLUGIN_NO_ENTRY
extern "C" __attribute__((visibility("default"))) const void* gpucolo_gpu_get_api(void) { return nullptr; }
#else
extern "C" __attribute__((visibility("default"))) int gpucolo_something_else(void) { return 0; }
#endif
