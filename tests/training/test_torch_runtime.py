"""gpu_ids_of: the torch device of a rank named as the GPU meters know it."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
import torch

from carbon_callbacks.training.torch_runtime import gpu_ids_of


def fake_torch(hip: str | None) -> SimpleNamespace:
    """Torch as a GPU build shows it: one device at PCI 0000:c6:00 with a CUDA-style UUID."""
    props = SimpleNamespace(
        uuid="8f3b0a4c-1111-2222-3333-444455556666",
        pci_domain_id=0,
        pci_bus_id=0xC6,
        pci_device_id=0,
    )
    cuda = SimpleNamespace(current_device=lambda: 0, get_device_properties=lambda index: props)
    return SimpleNamespace(version=SimpleNamespace(hip=hip), cuda=cuda)


def test_a_cpu_device_names_no_gpu() -> None:
    assert gpu_ids_of(torch.device("cpu")) == ()


def test_an_nvidia_device_is_named_by_its_nvml_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch(hip=None))
    device = SimpleNamespace(type="cuda", index=0)
    assert gpu_ids_of(device) == ("GPU-8f3b0a4c-1111-2222-3333-444455556666",)


def test_an_amd_device_under_rocm_is_named_by_its_pci_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch(hip="6.2.41133"))
    device = SimpleNamespace(type="cuda", index=None)
    assert gpu_ids_of(device) == ("0000:c6:00",)


def test_a_device_torch_cannot_describe_means_every_visible_gpu() -> None:
    """This torch is a CPU build: asking for a CUDA device's properties fails."""
    assert gpu_ids_of(torch.device("cuda", 0)) is None
