"""Meteora DLMM by concern: account layouts, addresses, quotes, the swap instruction.

The public surface is :mod:`pipeline.venues.meteora_dlmm`."""
