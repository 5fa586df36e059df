"""Index: chapters cut into token-bounded chunks, embedded with MiniLM, and searched through one
FAISS index (the evidence every QA row cites).
"""
