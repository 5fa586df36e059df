"""LLM: one client for every stage (requests, sampling, the content-addressed cache), the prompt
templates, and the backends behind it (llama.cpp, OpenAI-compatible, OpenAI Batch, vLLM).
"""
