"""The compiled training model: a forward pass while hooks are armed (the live checks' sampled
batches) runs eagerly, so arming them never makes dynamo trace a second graph."""
from __future__ import annotations

import torch
from torch import nn

from trainlib.precision import CompiledUnlessHooked


def graphs_compiled() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def test_a_hooked_forward_runs_eagerly_and_the_compiled_graph_is_traced_once():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()  # another test's graphs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    wrapped = CompiledUnlessHooked(model, backend="eager")  # dynamo's tracing and guards, no code generation
    x = torch.randn(3, 4)
    expected = model(x)
    seen = []

    def arm():
        return model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))

    handle = arm()
    assert torch.allclose(wrapped(x), expected)
    assert seen == [(3, 8)] and not wrapped.warm and graphs_compiled() == 0  # step 0, hooked: eager
    handle.remove()
    assert torch.allclose(wrapped(x), expected)
    assert wrapped.warm and graphs_compiled() == 1 and seen == [(3, 8)]
    handle = arm()
    wrapped(x)
    handle.remove()
    wrapped(x)
    assert seen == [(3, 8), (3, 8)] and graphs_compiled() == 1  # armed again, disarmed again: no new graph


def test_what_the_wrapped_model_has_is_reached_through_the_wrapper():
    class WithNoSync(nn.Linear):
        def no_sync(self):
            return "no_sync of the wrapped model"

    assert not hasattr(CompiledUnlessHooked(nn.Linear(2, 2), backend="eager"), "no_sync")
    assert CompiledUnlessHooked(WithNoSync(2, 2), backend="eager").no_sync() == "no_sync of the wrapped model"
