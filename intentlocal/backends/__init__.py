"""Backends: the embedder (ONNX), the LLM (llama.cpp), fakes, and model supply."""
