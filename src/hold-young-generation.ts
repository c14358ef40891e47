import { holdYoungGeneration } from './young-generation';

// The CLI imports this module first, so the young generation stays small while the rest of
// the broker's modules load (see young-generation.ts).
holdYoungGeneration();
