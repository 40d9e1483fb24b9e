"""The simulated company behind `statex-bi demo`: a world simulated from a seed (`world`), served by
loopback sandbox APIs speaking each provider's wire format (`apis`), loaded through the real connectors."""
