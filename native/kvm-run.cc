// bindKvmRun(fd) makes a function that calls ioctl(fd, KVM_RUN, 0) and returns its result or
// -errno: a vCPU's way into its guest, called once per guest exit. It is made with V8's API
// instead of N-API for that reason (as untracked-buffer.cc is, for another).
//
// A function made with napi_create_function reaches its C callback through N-API's wrapper: a
// scope for the module, the arguments fetched and converted one checked call at a time, a check
// for a pending exception on the way out. That was ~30-50 ns of a call here in a loop doing
// nothing else, and 1-2% of an exit on the exit path, where what it touches is presumably no longer
// cached after the guest ran (README, "Performance"). V8 calls this one
// directly, with no argument: the fd is the function's data, a small integer that V8 keeps in
// the function's own call record, so the call touches no other object.

#include <errno.h>
#include <linux/kvm.h>
#include <node_api.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <v8.h>

static void kvm_run(const v8::FunctionCallbackInfo<v8::Value> &info) {
  int rc = ioctl(info.Data().As<v8::Int32>()->Value(), KVM_RUN, 0);
  info.GetReturnValue().Set(rc < 0 ? -errno : rc);
}

// The function, in the calling thread's context (each thread's isolate loads the addon for
// itself), or NULL with a JavaScript exception pending.
extern "C" napi_value tsvmm_bind_kvm_run(int32_t fd) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  v8::Local<v8::Function> fn;
  if (!v8::Function::New(isolate->GetCurrentContext(), kvm_run, v8::Integer::New(isolate, fd), 0,
                         v8::ConstructorBehavior::kThrow)
           .ToLocal(&fn)) {
    return nullptr;
  }
  return reinterpret_cast<napi_value>(*fn);
}
