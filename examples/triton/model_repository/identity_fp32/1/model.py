"""Triton python-backend model: returns INPUT0 as OUTPUT0, the smallest model that proves the serving path."""

from __future__ import annotations

import triton_python_backend_utils as pb_utils  # provided by Triton's python backend, not pip


class TritonPythonModel:
    def execute(self, requests: list[object]) -> list[object]:
        responses = []
        for request in requests:
            tensor = pb_utils.get_input_tensor_by_name(request, "INPUT0")
            output = pb_utils.Tensor("OUTPUT0", tensor.as_numpy())
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses
