{
  "targets": [
    {
      "target_name": "tsvmm",
      "sources": ["native/tsvmm.c", "native/untracked-buffer.cc", "native/kvm-run.cc"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "container-init",
      "type": "executable",
      "sources": ["native/container-init.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
    }
  ]
}
