/** This worker may no longer act for the run: its target lease went to another run (or could not be renewed in time). */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}
