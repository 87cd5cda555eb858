class ParquetDatasetManager: pass
