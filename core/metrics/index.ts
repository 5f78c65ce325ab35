export { dice, iou, meanDice, overlap, type Overlap } from './overlap.ts';
