import type { InputProblem, ProblemLocator } from '../../errors.js';
import { parseCidr, parseIPv4, type Cidr } from '../../util/ipv4.js';
import { fieldName } from '../../util/yaml-file.js';
import type { Topology } from '../schema.js';

/**
 * What the checks of one topology share: where problems go, the ranges already parsed, and the
 * owners of names and addresses (each must be unique across the whole file).
 */
export class CheckContext {
  readonly problems: InputProblem[] = [];
  /** Each network's subnet, undefined when it does not parse. */
  readonly networks = new Map<string, Cidr | undefined>();
  /** Each node's podCIDR, for the nodes whose podCIDR parses. */
  readonly podCidrs = new Map<string, Cidr>();
  podRange: Cidr | undefined;
  serviceRange: Cidr | undefined;
  private readonly addressOwners = new Map<string, string>();

  constructor(
    readonly t: Topology,
    readonly file: ProblemLocator,
  ) {}

  at(path: PropertyKey[], message: string): void {
    this.problems.push(this.file.problem(path, message));
  }

  cidrAt(path: PropertyKey[], text: string): Cidr | undefined {
    const c = parseCidr(text);
    if (!c) this.at(path, `${text} is not a valid network (host bits set, or a part over 255)`);
    return c;
  }

  ipAt(path: PropertyKey[], text: string): number | undefined {
    const a = parseIPv4(text);
    if (a === undefined) this.at(path, `${text} is not a valid IPv4 address`);
    return a;
  }

  /** Addresses: one owner each. */
  claimAddress(path: PropertyKey[], address: string): void {
    const prior = this.addressOwners.get(address);
    if (prior) this.at(path, `address ${address} is already used by ${prior}`);
    else this.addressOwners.set(address, fieldName(path));
  }
}
