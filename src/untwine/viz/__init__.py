"""Pictures: dataset galleries, latent traversals, reconstructions, MI heat maps, reports."""
