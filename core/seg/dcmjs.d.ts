/** The slice of dcmjs (no bundled types) that core/seg uses: its Part 10 reader/writer and dictionary. */
declare module 'dcmjs' {
  type Dataset = Record<string, any>;
  interface DicomDictInstance {
    meta: Dataset;
    dict: Dataset;
    write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomDict: new (meta: Dataset) => DicomDictInstance;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean; noCopy?: boolean }): DicomDictInstance;
      };
      DicomMetaDictionary: {
        naturalizeDataset(dataset: Dataset): Dataset;
        denaturalizeDataset(dataset: Dataset): Dataset;
        uid(): string;
      };
      BitArray: { pack(pixels: Uint8Array): Uint8Array; unpack(packed: ArrayBuffer | Uint8Array): Uint8Array };
    };
    adapters: any;
    normalizers: any;
    derivations: any;
    log: { setLevel(level: string): void; getLevel(): number };
  };
  export default dcmjs;
}
