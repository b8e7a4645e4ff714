// addressparser 1.x ships no types; this is the part of its API the envelope uses.
declare module 'addressparser' {
  namespace addressparser {
    interface Address {
      name: string;
      address: string;
    }
    interface Group {
      name: string;
      group: Entry[];
    }
    type Entry = Address | Group;
  }
  function addressparser(input: string): addressparser.Entry[];
  export = addressparser;
}
