"""Live grid APIs, one module each: UK Carbon Intensity, Energi Data Service, Electricity Maps."""
