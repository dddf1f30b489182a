"""/proc/cpuinfo texts in the layouts real kernels write, for the CPU model tests.

Each block copies the fields and their order from a real machine's file (flags and ARM
"Features" shortened); the x86 topology fields (``physical id``, ``siblings``, ``core id``,
``cpu cores``) are generated per logical CPU the way the kernel numbers them.
"""

from __future__ import annotations

X86_BLOCK = """\
processor\t: {processor}
vendor_id\t: {vendor}
cpu family\t: 6
model\t\t: 85
model name\t: {model_name}
stepping\t: 7
microcode\t: 0x5003604
cpu MHz\t\t: 2500.000
cache size\t: 28160 KB
physical id\t: {physical_id}
siblings\t: {siblings}
core id\t\t: {core_id}
cpu cores\t: {cores}
apicid\t\t: {processor}
initial apicid\t: {processor}
fpu\t\t: yes
fpu_exception\t: yes
cpuid level\t: 22
wp\t\t: yes
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov ht syscall nx lm
bugs\t\t: spectre_v1 spectre_v2 spec_store_bypass swapgs taa itlb_multihit
bogomips\t: 5000.00
clflush size\t: 64
cache_alignment\t: 64
address sizes\t: 46 bits physical, 48 bits virtual
power management:

"""


def x86_cpuinfo(
    model_name: str, *, sockets: int, cores: int, threads_per_core: int, vendor: str
) -> str:
    """A whole file: ``sockets`` x ``cores`` x ``threads_per_core`` logical CPUs.

    Numbered as Linux numbers them: first thread of every core of every socket, then the second.
    """
    blocks = []
    processor = 0
    for _thread in range(threads_per_core):
        for socket in range(sockets):
            for core in range(cores):
                blocks.append(
                    X86_BLOCK.format(
                        processor=processor,
                        vendor=vendor,
                        model_name=model_name,
                        physical_id=socket,
                        siblings=cores * threads_per_core,
                        core_id=core,
                        cores=cores,
                    )
                )
                processor += 1
    return "".join(blocks)


XEON_GOLD_6248_TWO_SOCKETS = x86_cpuinfo(
    "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
    sockets=2,
    cores=20,
    threads_per_core=2,
    vendor="GenuineIntel",
)
"""A two-socket Xeon Gold 6248 server with hyper-threading: 2 x 20 cores, 80 logical CPUs."""

EPYC_7763_VM = x86_cpuinfo(
    "AMD EPYC 7763 64-Core Processor", sockets=1, cores=2, threads_per_core=2, vendor="AuthenticAMD"
)
"""A 4-vCPU VM on an EPYC 7763 (as hosted CI runners show): 2 cores, 2 threads each visible."""

EPYC_UNNAMED_VM = x86_cpuinfo(
    "AMD EPYC", sockets=1, cores=2, threads_per_core=1, vendor="AuthenticAMD"
)
"""A VM whose hypervisor passes no model number: the model name is just "AMD EPYC"."""

GRAVITON2_ARM64 = """\
processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

"""
"""An arm64 kernel (AWS Graviton2, Neoverse N1): no "model name", no topology fields."""

RASPBERRY_PI_ARMV7 = """\
processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

processor\t: 1
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2711
Revision\t: c03111
Serial\t\t: 10000000abcdef01
Model\t\t: Raspberry Pi 4 Model B Rev 1.1
"""
"""A 32-bit ARM kernel (Raspberry Pi OS): a "model name" per CPU, then a board block."""
