// An ArrayBuffer over memory that V8 must not count as its own: guest RAM. In C++, with V8's API,
// because N-API cannot say it (kvm-run.cc is the addon's other piece of C++).
//
// napi_create_external_arraybuffer gives the buffer a deleter, and V8 counts the bytes of every
// buffer with a deleter as external memory its collector could free. 64 MiB more than at the last
// full collection starts incremental marking and a mark-compact: for a 256 MiB guest, once in
// every isolate that wraps it (the main thread, each vCPU worker, the I/O worker), ~3-4 ms each
// and a heap grown by ~3 MiB. Collecting such a buffer frees nothing: the mapping is the VM's and
// its owner unmaps it. V8 leaves a backing store out of that count when its deleter is
// BackingStore::EmptyDeleter, which only the V8 API can give.

#include <memory>
#include <node_api.h>
#include <v8.h>

extern "C" napi_value tsvmm_untracked_array_buffer(void *data, size_t length) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(data, length, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  // A napi_value is the address of a v8::Local's slot, as Node's N-API converts one; the N-API
  // callback's handle scope keeps the slot alive until the value is returned to JavaScript.
  return reinterpret_cast<napi_value>(*buffer);
}
