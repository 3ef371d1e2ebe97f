"""The C/C++/linker sources of a firmware, as templates (firmware.py fills them in).

startup.c    vector table, FPU enable, .data/.bss init, C++ constructors, the newlib stubs
             -nostartfiles needs; a fault prints its registers through semihosting and exits.
runner.cc    the op resolver (only the model's ops), the interpreter, the timer-based tick
             counter, a MicroProfilerInterface that records each op's ticks, the stack paint;
             reads inputs from input.bin and writes outputs to output.bin through semihosting.
link.ld      the machine's map (cores.Machine): 4 MB "flash", 4 MB RAM, and on MPS3 a boot
             vector at the board's boot address.
model.S      the model as a const array, by .incbin (no multi-megabyte C array to compile).

Every report line starts with "EDGECONV " so emulator.py can tell it from TFLM's own prints.
"""

from __future__ import annotations

STARTUP_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void __libc_init_array(void);

void *__dso_handle = 0;
void _init(void) {}
void _fini(void) {}

static void semihost_write0(const char *s) {
  register uint32_t r0 __asm__("r0") = 0x04;  /* SYS_WRITE0 */
  register const char *r1 __asm__("r1") = s;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

static void semihost_exit(void) {
  register uint32_t r0 __asm__("r0") = 0x18;  /* SYS_EXIT */
  register uint32_t r1 __asm__("r1") = 0x20026;  /* ADP_Stopped_ApplicationExit */
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  for (;;) {}
}

static void hex32(char *out, uint32_t v) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 7; i >= 0; --i) { out[i] = digits[v & 0xf]; v >>= 4; }
}

/* A fault: say where, then stop the emulator (the host sees no "EDGECONV done"). */
__attribute__((used)) void Fault_Report(uint32_t *frame) {
  uint32_t cfsr = *(volatile uint32_t *)0xE000ED28;
  char line[] = "\nEDGECONV fault ipsr=........ pc=........ cfsr=........\n";
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  hex32(line + 21, ipsr);
  hex32(line + 33, frame[6]);
  hex32(line + 47, cfsr);
  semihost_write0(line);
  semihost_exit();
}

/* The frame the core stacked is at MSP on entry: hand it over before anything is pushed. */
__attribute__((naked)) void Fault_Handler(void) {
  __asm__ volatile("mrs r0, msp\n b Fault_Report");
}

__attribute__((optimize("O1"))) void Reset_Handler(void) {
SET_VTOR  /* The FPU first: compiled code may use it anywhere after this. */
  *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);  /* CPACR: CP10, CP11 full access */
  __asm__ volatile("dsb\n isb" ::: "memory");
  /* Fault reporting: enable the usage, bus and memory-management fault handlers. */
  *(volatile uint32_t *)0xE000ED24 |= (7u << 16);
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss; ) *dst++ = 0;
  __libc_init_array();
  exit(main());
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16 + 32])(void) = {
    (void (*)(void))(&_estack), Reset_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    0, 0, 0, 0,
    Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler,
};
BOOT_VECTOR"""

RUNNER_CC = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/micro_time.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" const unsigned char g_model[];
extern "C" uint32_t _sstack, _estack;

TIMER_BLOCKnamespace {
constexpr int kMaxEvents = 2048;

// Each operator's begin/end ticks; depth tells a subgraph's ops (IF, WHILE) from the top.
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (count_ >= kMaxEvents) { overflow_ = true; return kMaxEvents; }
    uint32_t h = count_++;
    tags_[h] = tag; depth_[h] = open_++; begin_[h] = Ticks(); end_[h] = begin_[h];
    return h;
  }
  void EndEvent(uint32_t h) override {
    uint32_t now = Ticks();
    if (h < kMaxEvents) { end_[h] = now; --open_; }
  }
  void Clear() { count_ = 0; open_ = 0; overflow_ = false; }
  void Print(int invoke) const {
    for (int i = 0; i < count_; ++i) {
      printf("EDGECONV op %d %d %d %lu %s\n", invoke, i, depth_[i],
             static_cast<unsigned long>(end_[i] - begin_[i]), tags_[i] ? tags_[i] : "?");
    }
    if (overflow_) printf("EDGECONV op_overflow %d\n", kMaxEvents);
  }
 private:
  const char* tags_[kMaxEvents];
  uint32_t begin_[kMaxEvents], end_[kMaxEvents];
  int depth_[kMaxEvents];
  int count_ = 0, open_ = 0;
  bool overflow_ = false;
};

constexpr uint32_t kPaint = 0xC5A5C5A5u;

// Paint the unused stack below the current frame, to find the deepest use later.
__attribute__((noinline)) void PaintStack() {
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t* p = &_sstack; p < sp - 32; ++p) *p = kPaint;
}

uint32_t StackPeak() {
  uint32_t* p = &_sstack;
  while (p < &_estack && *p == kPaint) ++p;
  return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&_estack) -
                               reinterpret_cast<uintptr_t>(p));
}

void LogToStdout(const char* s) { fputs(s, stdout); }

alignas(16) __attribute__((section(".tensor_arena"))) uint8_t g_arena[ARENA_BYTES];
// Its 32 KB of event records are the measurement's, not the model's: kept out of .bss.
__attribute__((section(".profiler"))) OpProfiler g_profiler;
}  // namespace

extern "C" void initialise_monitor_handles(void);

// What the runner is doing, for the line an abort() prints (TFLM aborts without a word).
static const char* volatile g_stage = "start-up";

// Replaces newlib's abort(), which would stop the emulator with the report still buffered.
extern "C" void abort(void) {
  printf("\nEDGECONV error abort() called in TFLite Micro during %s from=%08lx\n", g_stage,
         static_cast<unsigned long>(reinterpret_cast<uintptr_t>(__builtin_return_address(0))));
  fflush(stdout);
  _Exit(134);
}

int main() {
  initialise_monitor_handles();
  RegisterDebugLogCallback(LogToStdout);
  StartTimer();
  g_stage = "GetModel";
  const tflite::Model* model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("EDGECONV error model schema version %lu, runtime %d\n",
           static_cast<unsigned long>(model->version()), TFLITE_SCHEMA_VERSION);
    return 1;
  }

  g_stage = "AllocateTensors";
  PaintStack();
  uint32_t t0 = Ticks();
  static tflite::MicroMutableOpResolver<NUM_OPS> resolver;
REGISTRATIONS
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, ARENA_BYTES, nullptr,
                                              &g_profiler);
  TfLiteStatus status = interpreter.AllocateTensors();
  uint32_t t1 = Ticks();
  uint32_t setup_stack = StackPeak();
  if (status != kTfLiteOk) {
    printf("EDGECONV error AllocateTensors failed (arena %lu bytes)\n",
           static_cast<unsigned long>(ARENA_BYTES));
    return 1;
  }
  printf("EDGECONV setup_ticks %lu\n", static_cast<unsigned long>(t1 - t0));
  printf("EDGECONV setup_stack %lu\n", static_cast<unsigned long>(setup_stack));
  printf("EDGECONV arena_used_bytes %lu\n",
         static_cast<unsigned long>(interpreter.arena_used_bytes()));
  for (size_t i = 0; i < interpreter.inputs_size(); ++i)
    printf("EDGECONV input %u %u\n", static_cast<unsigned>(i),
           static_cast<unsigned>(interpreter.input(i)->bytes));
  for (size_t i = 0; i < interpreter.outputs_size(); ++i)
    printf("EDGECONV output %u %u\n", static_cast<unsigned>(i),
           static_cast<unsigned>(interpreter.output(i)->bytes));

  FILE* in = fopen("input.bin", "rb");
  FILE* out = fopen("output.bin", "wb");
  if (in == nullptr || out == nullptr) {
    printf("EDGECONV error cannot open input.bin/output.bin through semihosting\n");
    return 1;
  }
  for (int n = 0;; ++n) {
    bool got = true;
    for (size_t i = 0; i < interpreter.inputs_size() && got; ++i) {
      TfLiteTensor* t = interpreter.input(i);
      got = fread(t->data.raw, 1, t->bytes, in) == t->bytes;
    }
    if (!got) break;
    g_profiler.Clear();
    g_stage = "Invoke";
    PaintStack();
    uint32_t a = Ticks();
    status = interpreter.Invoke();
    uint32_t b = Ticks();
    uint32_t stack = StackPeak();
    g_stage = "reading inputs and writing outputs";
    if (status != kTfLiteOk) {
      printf("EDGECONV error Invoke failed on input %d\n", n);
      return 1;
    }
    printf("EDGECONV invoke %d %lu %lu\n", n, static_cast<unsigned long>(b - a),
           static_cast<unsigned long>(stack));
    if (n == 0) g_profiler.Print(n);
    for (size_t i = 0; i < interpreter.outputs_size(); ++i) {
      TfLiteTensor* t = interpreter.output(i);
      if (fwrite(t->data.raw, 1, t->bytes, out) != t->bytes) {
        printf("EDGECONV error cannot write output.bin\n");
        return 1;
      }
    }
  }
  fclose(in);
  fclose(out);
  printf("EDGECONV done\n");
  fflush(stdout);
  return 0;
}
"""

MODEL_S = """
  .section .model, "a"
  .balign 16
  .global g_model
g_model:
  .incbin "model.tflite"
  .global g_model_end
g_model_end:
"""

# The timer the runner reads (cores.Machine.timer), as it is filled in for the MPS2 machines.
TIMER_CMSDK = r"""// CMSDK APB timer0 (TIMER_ADDR0): a 32-bit down-counter at TIMER_MHZ MHz in QEMU. With
// -icount shift=0 every instruction is 1 ns of virtual time: TIMER_PER_TICK instructions per tick.
namespace {
volatile uint32_t* const kTimerCtrl = reinterpret_cast<volatile uint32_t*>(TIMER_ADDR0);
volatile uint32_t* const kTimerValue = reinterpret_cast<volatile uint32_t*>(TIMER_ADDR4);
volatile uint32_t* const kTimerReload = reinterpret_cast<volatile uint32_t*>(TIMER_ADDR8);

inline uint32_t Ticks() { return 0xFFFFFFFFu - *kTimerValue; }

void StartTimer() {
  *kTimerCtrl = 0;
  *kTimerReload = 0xFFFFFFFFu;
  *kTimerValue = 0xFFFFFFFFu;
  *kTimerCtrl = 1;  // enable, no interrupt
}
}  // namespace

namespace tflite {
uint32_t ticks_per_second() { return TIMER_HZu; }
uint32_t GetCurrentTimeTicks() { return Ticks(); }
}  // namespace tflite

"""

# The SSE-300's system counter (AN547, no CMSDK timer): a 64-bit up-counter, enabled through
# its control frame (CNTCR bit 0), whose low word the runner reads from the read frame.
TIMER_SSE_COUNTER = r"""// The SSE-300 system counter (read at TIMER_ADDR0): a 64-bit up-counter at TIMER_MHZ MHz in QEMU.
// With -icount shift=0 every instruction is 1 ns of virtual time: TIMER_PER_TICK instructions per tick.
namespace {
volatile uint32_t* const kCounterControl = reinterpret_cast<volatile uint32_t*>(COUNTER_CONTROL);
volatile uint32_t* const kCounterLow = reinterpret_cast<volatile uint32_t*>(TIMER_ADDR0);

inline uint32_t Ticks() { return *kCounterLow; }

void StartTimer() { *kCounterControl = 1; }  // CNTCR.EN
}  // namespace

namespace tflite {
uint32_t ticks_per_second() { return TIMER_HZu; }
uint32_t GetCurrentTimeTicks() { return Ticks(); }
}  // namespace tflite

"""

# Where the core fetches its first vector when that is not the start of "flash" (MPS3): a
# two-word table there, and the reset handler points VTOR at the full one.
SET_VTOR_C = """  { extern void (*const g_vectors[16 + 32])(void);
    *(volatile uint32_t *)0xE000ED08 = (uint32_t)g_vectors; }  /* VTOR */
"""
BOOT_VECTOR_C = """
__attribute__((section(".boot_vector"), used)) void (*const g_boot_vector[2])(void) = {
    (void (*)(void))(&_estack), Reset_Handler};
"""
BOOT_MEMORY_LD = "  BOOT  (rx)  : ORIGIN = BOOT_ORIGIN, LENGTH = 0x400\n"
BOOT_SECTION_LD = "  .boot : { KEEP(*(.boot_vector)) } > BOOT\n"

LINK_LD = """
MEMORY
{
  FLASH (rx)  : ORIGIN = FLASH_ORIGIN, LENGTH = FLASH_SIZE
  RAM   (rwx) : ORIGIN = RAM_ORIGIN, LENGTH = RAM_SIZE
BOOT_MEMORY}
ENTRY(Reset_Handler)
_stack_size = STACK_BYTES;

SECTIONS
{
BOOT_SECTION  .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
  .text : {
    *(.text*)
    KEEP(*(.init)) KEEP(*(.fini))
    *(.rodata*)
    . = ALIGN(4);
  } > FLASH
  .ARM.extab : { *(.ARM.extab* .gnu.linkonce.armextab.*) } > FLASH
  .ARM.exidx : { __exidx_start = .; *(.ARM.exidx*) __exidx_end = .; } > FLASH
  .preinit_array : {
    PROVIDE_HIDDEN(__preinit_array_start = .); KEEP(*(.preinit_array*));
    PROVIDE_HIDDEN(__preinit_array_end = .);
  } > FLASH
  .init_array : {
    PROVIDE_HIDDEN(__init_array_start = .); KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*));
    PROVIDE_HIDDEN(__init_array_end = .);
  } > FLASH
  .fini_array : {
    PROVIDE_HIDDEN(__fini_array_start = .); KEEP(*(SORT(.fini_array.*))) KEEP(*(.fini_array*));
    PROVIDE_HIDDEN(__fini_array_end = .);
  } > FLASH
  .model : { . = ALIGN(16); KEEP(*(.model)) } > FLASH
  _sidata = LOADADDR(.data);
  .data : { . = ALIGN(4); _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss (NOLOAD) : { . = ALIGN(4); _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
  .profiler (NOLOAD) : { . = ALIGN(8); KEEP(*(.profiler)) } > RAM
  .tensor_arena (NOLOAD) : { . = ALIGN(16); KEEP(*(.tensor_arena)) } > RAM
  .heap (NOLOAD) : {
    . = ALIGN(8); end = .; _end = .; __end__ = .; . = . + HEAP_BYTES; . = ALIGN(8);
  } > RAM
  .stack (ORIGIN(RAM) + LENGTH(RAM) - _stack_size) (NOLOAD) : {
    _sstack = .; . = . + _stack_size; _estack = .;
  } > RAM
}
"""
